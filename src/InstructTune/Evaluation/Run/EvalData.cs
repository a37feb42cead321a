using System.Text.Json;
using InstructTune.Data.Loading;
using InstructTune.Data.Records;
using InstructTune.Evaluation.Metrics;

namespace InstructTune.Evaluation.Run;

/// <summary>
/// One evaluated example: the record (its prompt is formatted later), the reference answers, and for
/// multiple-choice data the option texts and the index of the right one. <see cref="Id"/> is the record's "id"
/// field when the file has one, else its 0-based position in the file; predictions are matched by it.
/// </summary>
public sealed record EvalExample(string Id, InstructionRecord Record, IReadOnlyList<string> References,
    IReadOnlyList<string>? Options = null, int? Gold = null)
{
    public string Task => Record.Task;
}

/// <summary>
/// Reads the evaluated file with the data pipeline's loaders (<see cref="DatasetLoader"/>: alpaca, dolly, sharegpt,
/// messages, gsm8k, sni, csv, self-instruct; a LLaMA-Factory dataset_info.json with a dataset name), plus the
/// evaluation-only <c>mc</c> format for multiple-choice files. The reference of a record is its output, or for chats
/// the last assistant turn. Rejected records are counted and the first ones named; a file with no usable record is an
/// <see cref="EvalInputException"/>.
/// </summary>
public static class EvalData
{
    public sealed record Loaded(List<EvalExample> Examples, int Rejected, IReadOnlyList<string> FirstRejections, string Format);

    /// <param name="split">The split of a Hugging Face Parquet folder (data/&lt;split&gt;-*.parquet; default train).</param>
    public static Loaded Load(string path, string? format, string? fields = null, string? dataset = null, string? split = null)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) throw new EvalInputException($"--data {path}: no such file or folder");
        if (Path.GetFileName(path) == "dataset_info.json") return FromRegistry(path, dataset);
        if (string.IsNullOrWhiteSpace(format)) format = Guess(path);
        if (format.Equals("mc", StringComparison.OrdinalIgnoreCase)) return MultipleChoice.Read(path);
        DataFormat f;
        FieldMap map;
        try { f = DataFormats.Parse(format); map = FieldMap.Parse(fields); }
        catch (ArgumentException ex) { throw new EvalInputException($"--format/--fields: {ex.Message} (or mc for multiple choice)"); }
        if (f == DataFormat.Text) throw new EvalInputException("--format text: plain text has no prompt and reference to evaluate");
        var options = new LoadOptions(f, map, Split: string.IsNullOrWhiteSpace(split) ? "train" : split);
        if (f == DataFormat.Parquet || (f is not (DataFormat.Sni or DataFormat.Csv) && IsParquet(path, options.Split)))
        {
            try { ParquetRecordReader.Files(path, options.Split); }
            catch (Exception ex) when (ex is DataFormatException or IOException) { throw new EvalInputException($"--data {path}: {ex.Message}"); }
        }
        return FromLoader(path, options, format.ToLowerInvariant());
    }

    private static bool IsParquet(string path, string split) =>
        path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase)
        || (Directory.Exists(path) && ParquetRecordReader.Files(path, split, throwIfNone: false).Count > 0);

    // The file's name says it when it can (gsm8k, sni, csv); anything else must be named.
    private static string Guess(string path)
    {
        var name = Path.GetFileName(path).ToLowerInvariant();
        if (name.EndsWith(".csv", StringComparison.Ordinal)) return "csv";
        // A .parquet file or a Hugging Face folder of data/<split>-*.parquet: its columns say the layout.
        if (name.EndsWith(".parquet", StringComparison.Ordinal) || (Directory.Exists(path) && ParquetRecordReader.IsParquet(path))) return "parquet";
        if (path.Contains("gsm8k", StringComparison.OrdinalIgnoreCase)) return "gsm8k";
        if (Directory.Exists(path)) return "sni";
        throw new EvalInputException($"--data {path}: say which format it is with --format (alpaca, dolly, sharegpt, messages, gsm8k, sni, csv, self-instruct, parquet, mc)");
    }

    private static Loaded FromRegistry(string path, string? dataset)
    {
        List<LlamaFactoryEntry> entries;
        try { entries = LlamaFactoryRegistry.Read(path); }
        catch (DataFormatException ex) { throw new EvalInputException(ex.Message); }
        if (dataset is null)
            throw new EvalInputException($"--data {path}: name the dataset with --dataset (one of {string.Join(", ", entries.Select(e => e.Name))})");
        var entry = entries.FirstOrDefault(e => e.Name == dataset)
            ?? throw new EvalInputException($"--dataset {dataset}: not in {path} (entries: {string.Join(", ", entries.Select(e => e.Name))})");
        if (entry.Missing is not null || entry.LocalPath is null || entry.Format is null)
            throw new EvalInputException($"--dataset {dataset}: {entry.Missing}");
        return FromLoader(entry.LocalPath, new LoadOptions(entry.Format.Value, entry.Fields, dataset), entry.Format.Value.ToString().ToLowerInvariant());
    }

    private static Loaded FromLoader(string path, LoadOptions options, string formatName)
    {
        var ids = JsonIds(path, options.Format);
        var examples = new List<EvalExample>();
        var firstRejections = new List<string>();
        int rejected = 0;
        IEnumerable<LoadItem> items;
        try { items = DatasetLoader.Read(path, options).ToList(); }
        catch (DataFormatException ex) { throw new EvalInputException(ex.Message); }
        int position = 0;
        foreach (var item in items)
        {
            if (item.Rejection is { } r)
            {
                rejected++;
                if (firstRejections.Count < 5) firstRejections.Add(r.ToString());
                continue;
            }
            var rec = item.Record!;
            string reference = rec.IsChat ? LastAssistant(rec) : rec.Output;
            string id = ids is not null && ids.TryGetValue(rec.Source.Index, out var given) ? given
                : (rec.Source.Index >= 0 && options.Format is not (DataFormat.Sni or DataFormat.Csv or DataFormat.SelfInstruct or DataFormat.Parquet)
                    ? rec.Source.Index : position).ToString(System.Globalization.CultureInfo.InvariantCulture);
            examples.Add(new EvalExample(id, rec, [reference]));
            position++;
        }
        var dup = examples.GroupBy(e => e.Id).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new EvalInputException($"--data {path}: id \"{dup.Key}\" occurs {dup.Count()} times (ids must be unique)");
        if (examples.Count == 0)
            throw new EvalInputException($"--data {path}: no usable record as {formatName}" + (firstRejections.Count > 0 ? $"; first problem: {firstRejections[0]}" : ""));
        return new Loaded(examples, rejected, firstRejections, formatName);
    }

    private static string LastAssistant(InstructionRecord r)
    {
        for (int i = r.Messages!.Count - 1; i >= 0; i--)
            if (r.Messages[i].Role == "assistant") return r.Messages[i].Content;
        return "";
    }

    // "id" fields of a JSON/JSONL file by record index (null when the format is not one record per element).
    private static Dictionary<int, string>? JsonIds(string path, DataFormat format)
    {
        if (format is DataFormat.Sni or DataFormat.Csv or DataFormat.SelfInstruct or DataFormat.Parquet || Directory.Exists(path)
            || path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase)) return null;
        var ids = new Dictionary<int, string>();
        foreach (var chunk in JsonRecordSplitter.Split(path))
        {
            if (chunk.StructuralError is not null) continue;
            try
            {
                using var doc = JsonDocument.Parse(chunk.Bytes);
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("id", out var id))
                    ids[chunk.Index] = id.ValueKind == JsonValueKind.String ? id.GetString()! : id.GetRawText();
            }
            catch (JsonException) { }
        }
        return ids.Count > 0 ? ids : null;
    }

    /// <summary>
    /// <paramref name="n"/> examples spread evenly over the file: the file is cut into n equal strata and one example
    /// is drawn from each with a seeded generator, so every part of the file (and every task in a file sorted by task)
    /// is represented; order is kept. n ≤ 0 or n ≥ count keeps everything.
    /// </summary>
    public static List<EvalExample> Sample(IReadOnlyList<EvalExample> all, int n, int seed) =>
        n <= 0 || n >= all.Count ? all.ToList() : SpreadIndices(all.Count, n, seed).Select(i => all[i]).ToList();

    /// <summary>The indices <see cref="Sample"/> keeps: one seeded draw from each of n equal strata of 0..count-1.</summary>
    public static List<int> SpreadIndices(int count, int n, int seed)
    {
        var rng = new Random(seed);
        var picked = new List<int>(n);
        for (int i = 0; i < n; i++)
        {
            int lo = (int)((long)i * count / n), hi = (int)((long)(i + 1) * count / n);
            picked.Add(lo + rng.Next(hi - lo));
        }
        return picked;
    }
}

/// <summary>
/// The <c>mc</c> format: JSON array or JSONL of <c>{"question" | "instruction", "choices" | "options": [...],
/// "answer" | "answerKey" | "label" | "gold"}</c>. Choices may also be ARC's <c>{"text": [...], "label": [...]}</c>;
/// the answer an index (0-based), a letter, or the right option's text. The prompt is the question followed by the
/// lettered options ("A. …") and "Answer:"; the reference is the right letter.
/// </summary>
public static class MultipleChoice
{
    public static EvalData.Loaded Read(string path)
    {
        var examples = new List<EvalExample>();
        var problems = new List<string>();
        int rejected = 0;
        foreach (var chunk in JsonRecordSplitter.Split(path))
        {
            try
            {
                if (chunk.StructuralError is not null) throw new EvalInputException(chunk.StructuralError);
                using var doc = JsonDocument.Parse(chunk.Bytes);
                examples.Add(Parse(doc.RootElement, chunk.Index, path));
            }
            catch (Exception ex) when (ex is JsonException or EvalInputException or InvalidOperationException)
            {
                rejected++;
                if (problems.Count < 5) problems.Add($"{path}:{chunk.Line} (record {chunk.Index}): {ex.Message}");
            }
        }
        if (examples.Count == 0)
            throw new EvalInputException($"--data {path}: no usable multiple-choice record" + (problems.Count > 0 ? $"; first problem: {problems[0]}" : ""));
        return new EvalData.Loaded(examples, rejected, problems, "mc");
    }

    private static EvalExample Parse(JsonElement e, int index, string path)
    {
        string? Str(params string[] keys)
        {
            foreach (var k in keys)
                if (e.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.String) return v.GetString();
            return null;
        }
        var question = Str("question", "instruction", "query", "prompt") ?? throw new EvalInputException("question: missing (question, instruction, query or prompt)");
        List<string> options;
        JsonElement c = default;
        if (!(e.TryGetProperty("choices", out c) || e.TryGetProperty("options", out c)))
            throw new EvalInputException("choices: missing (choices or options)");
        if (c.ValueKind == JsonValueKind.Object && c.TryGetProperty("text", out var texts)) c = texts;
        if (c.ValueKind != JsonValueKind.Array) throw new EvalInputException("choices: not an array");
        options = c.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : throw new EvalInputException("choices: every option must be a string")).ToList();
        if (options.Count < 2 || options.Count > 26) throw new EvalInputException($"choices: {options.Count} options (2 to 26 needed)");
        JsonElement a = default;
        bool hasAnswer = false;
        foreach (var k in new[] { "answer", "answerKey", "label", "gold" })
            if (e.TryGetProperty(k, out a)) { hasAnswer = true; break; }
        if (!hasAnswer) throw new EvalInputException("answer: missing (answer, answerKey, label or gold)");
        int gold = a.ValueKind switch
        {
            JsonValueKind.Number when a.TryGetInt32(out var i) => i,
            JsonValueKind.String when a.GetString()!.Trim() is { Length: 1 } l && char.IsAsciiLetterUpper(l[0]) => l[0] - 'A',
            JsonValueKind.String when a.GetString()!.Trim() is { Length: 1 } d && char.IsAsciiDigit(d[0]) && !options.Contains(d) => d[0] - '0',
            JsonValueKind.String => options.IndexOf(a.GetString()!),
            _ => -1,
        };
        if (gold < 0 || gold >= options.Count) throw new EvalInputException($"answer: {a.GetRawText()} is not one of the {options.Count} options");
        var id = e.TryGetProperty("id", out var idEl) ? (idEl.ValueKind == JsonValueKind.String ? idEl.GetString()! : idEl.GetRawText())
            : index.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var prompt = question + "\n" + string.Join("\n", options.Select((o, i) => $"{(char)('A' + i)}. {o}")) + "\nAnswer:";
        var task = Str("subject", "task", "category") ?? Path.GetFileNameWithoutExtension(path);
        var record = new InstructionRecord(prompt, "", ((char)('A' + gold)).ToString(), task, new RecordSource(path, 0, index));
        return new EvalExample(id, record, [record.Output], options, gold);
    }
}
