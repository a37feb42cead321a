using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using InstructTune.Tokenizers;
using InstructTune.Tokenizers.Training;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune tokenize</c>, <c>itune detokenize</c>, <c>itune train-tokenizer</c>. JSONL in and out (standard input and
/// output by default), one output line per input line in input order; lines are processed in blocks on all cores.
/// A bad line stops the command with "FILE:LINE: what is wrong" on standard error and exit code 1; --output is
/// written atomically, so a failed run leaves no partial file.
/// </summary>
public static class TokenizerCommands
{
    public static IEnumerable<Command> All() => [Tokenize(), Detokenize(), TrainTokenizer()];

    private const int BlockLines = 4096;
    private static readonly JsonSerializerOptions Relaxed = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static Option<string> TokenizerOption() =>
        new("--tokenizer") { Description = "Folder with tokenizer.json (+ tokenizer_config.json), a tokenizer.json, or a .model file", Required = true };

    private static Option<string?> InputOption(string what) => new("--input") { Description = $"{what} (default: standard input)" };
    private static Option<string?> OutputOption() => new("--output") { Description = "Output JSONL file (default: standard output)" };

    public static Command Tokenize()
    {
        var tok = TokenizerOption();
        var add = new Option<bool>("--add-special-tokens") { Description = "Apply the post-processor (e.g. a leading BOS)" };
        var decode = new Option<bool>("--decode") { Description = "Also write \"decoded\": the decode of the ids, special tokens kept" };
        var input = InputOption("JSONL with {\"text\": …} per line");
        var output = OutputOption();
        var command = new Command("tokenize", "Encode {\"text\"} JSONL lines to {\"ids\"}") { tok, add, decode, input, output };
        command.SetAction(r => Run(r.GetValue(input), r.GetValue(output), () =>
        {
            var t = TokenizerLoader.Load(r.GetValue(tok)!);
            bool addSpecial = r.GetValue(add), withDecode = r.GetValue(decode);
            return (line, where) =>
            {
                var text = ReadField(line, "text", JsonValueKind.String, where);
                var enc = t.Encode(JsonStringLiteral.Read(text), addSpecial);
                var sb = new StringBuilder("{\"ids\":[");
                for (int i = 0; i < enc.Ids.Length; i++) { if (i > 0) sb.Append(','); sb.Append(enc.Ids[i]); }
                sb.Append(']');
                if (withDecode) sb.Append(",\"decoded\":").Append(JsonSerializer.Serialize(t.Decode(enc.Ids), Relaxed));
                return sb.Append('}').ToString();
            };
        }));
        return command;
    }

    public static Command Detokenize()
    {
        var tok = TokenizerOption();
        var skip = new Option<bool>("--skip-special-tokens") { Description = "Drop special tokens from the text" };
        var input = InputOption("JSONL with {\"ids\": […]} per line");
        var output = OutputOption();
        var command = new Command("detokenize", "Decode {\"ids\"} JSONL lines to {\"text\"}") { tok, skip, input, output };
        command.SetAction(r => Run(r.GetValue(input), r.GetValue(output), () =>
        {
            var t = TokenizerLoader.Load(r.GetValue(tok)!);
            bool skipSpecial = r.GetValue(skip);
            return (line, where) =>
            {
                var arr = ReadField(line, "ids", JsonValueKind.Array, where);
                var ids = new int[arr.GetArrayLength()];
                int k = 0;
                foreach (var e in arr.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int id) || id < 0 || id >= t.VocabSize)
                        throw new LineException($"{where}: ids[{k}] = {e.GetRawText()} is not a token id (0..{t.VocabSize - 1})");
                    ids[k++] = id;
                }
                return "{\"text\":" + JsonSerializer.Serialize(t.Decode(ids, skipSpecial), Relaxed) + "}";
            };
        }));
        return command;
    }

    public static Command TrainTokenizer()
    {
        var input = new Option<string>("--input") { Description = "Plain-text corpus, one document or line per line", Required = true };
        var size = new Option<int>("--vocab-size") { Description = "Vocabulary size including the 3 special and 256 byte tokens", Required = true };
        var outDir = new Option<string>("--out") { Description = "Folder for tokenizer.json and tokenizer_config.json", Required = true };
        var minFreq = new Option<int>("--min-frequency") { Description = "Stop when the best pair occurs fewer times (default 2)", DefaultValueFactory = _ => 2 };
        var command = new Command("train-tokenizer", "Learn a byte-level BPE tokenizer and write it in Hugging Face format") { input, size, outDir, minFreq };
        command.SetAction(r =>
        {
            {
                var o = new BpeTrainerOptions(r.GetValue(size), r.GetValue(minFreq));
                var result = ByteLevelBpeTrainer.Train(File.ReadLines(r.GetValue(input)!), o);
                ByteLevelBpeTrainer.Save(result, o, r.GetValue(outDir)!);
                Console.Error.WriteLine($"train-tokenizer: {result.Vocab.Count} tokens ({result.Merges.Count} merges) -> {r.GetValue(outDir)}");
                return 0;
            }
        });
        return command;
    }

    private sealed class LineException(string message) : InstructTune.Common.InputException(message);

    private static JsonElement ReadField(string line, string name, JsonValueKind kind, string where)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new LineException($"{where}: not valid JSON ({e.Message})"); }
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty(name, out var v) || v.ValueKind != kind)
            throw new LineException($"{where}: expected an object with \"{name}\" ({kind.ToString().ToLowerInvariant()})");
        return v.Clone();
    }

    /// <summary>Reads lines, maps each block in parallel, writes results in input order.</summary>
    private static int Run(string? inputPath, string? outputPath, Func<Func<string, string, string>> makeMapper)
    {
        var map = makeMapper();
        string name = inputPath ?? "<stdin>";
        void Process(TextReader reader, TextWriter writer)
        {
            var block = new List<string>(BlockLines);
            int lineNo = 0;
            void Flush()
            {
                var results = new string[block.Count];
                int first = lineNo - block.Count + 1;
                Parallel.For(0, block.Count, i => results[i] = map(block[i], $"{name}:{first + i}"));
                foreach (var r in results) writer.Write(r + "\n");
                block.Clear();
            }
            while (reader.ReadLine() is { } line)
            {
                lineNo++;
                if (line.Length == 0) { Flush(); writer.Write("\n"); continue; } // keep blank lines aligned
                block.Add(line);
                if (block.Count == BlockLines) Flush();
            }
            Flush();
        }
        try
        {
            using var reader = inputPath == null ? Console.In : new StreamReader(inputPath, System.Text.Encoding.UTF8);
            if (outputPath == null) { Process(reader, Console.Out); Console.Out.Flush(); }
            else AtomicFile.Write(outputPath, s =>
            {
                using var w = new StreamWriter(s, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
                Process(reader, w);
            });
            return 0;
        }
        catch (AggregateException ae) when (ae.InnerExceptions.Any(x => x is LineException))
        {
            // Several lines of one block failed in parallel: report the first one (CliErrors prints it, exit 2).
            throw ae.InnerExceptions.OfType<LineException>().OrderBy(x => x.Message, StringComparer.Ordinal).First();
        }
    }
}
