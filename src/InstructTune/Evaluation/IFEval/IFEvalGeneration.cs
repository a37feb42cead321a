using System.Diagnostics;
using System.Text;
using System.Text.Json;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Evaluation.Run;
using InstructTune.Generation;

namespace InstructTune.Evaluation.IFEval;

/// <summary>
/// <c>itune eval ifeval --model</c>: generates a response for every IFEval prompt with a local checkpoint and writes
/// them in the official response format (<c>{"prompt": …, "response": …}</c> per line, as Python's json.dumps writes
/// it, like the input_response_data files of google-research/instruction_following_eval), so the existing checker
/// scores them exactly as it scores anyone's responses. Prompts are formatted with <see cref="PromptFormatter"/>
/// and generated in batches (<see cref="Generator"/>); the file is appended and flushed per batch and a rerun
/// skips prompts already answered (a torn last line is dropped). <c>--limit N</c> takes N prompts spread evenly
/// (seeded) and writes them as <c>input_data.jsonl</c> beside the responses, which is then the input scored.
/// </summary>
public static class IFEvalGeneration
{
    public const string ResponsesFile = "responses.jsonl", InputFile = "input_data.jsonl";

    /// <summary>Returns (input file to score, responses file).</summary>
    public static (string Input, string Responses) Generate(string inputPath, string modelDir, string? adapterDir, string? template,
        EvalGenerationSettings settings, int limit, int seed, string outDir, Action<string>? log = null)
    {
        var prompts = IFEvalReader.ReadPrompts(inputPath);
        if (limit < 0) throw new EvalInputException($"--limit {limit}: must be ≥ 0");
        Directory.CreateDirectory(outDir);
        if (limit > 0 && limit < prompts.Count)
        {
            var lines = File.ReadAllLines(inputPath).Where(l => !string.IsNullOrWhiteSpace(l)).ToList();
            if (lines.Count != prompts.Count) throw new EvalInputException($"{inputPath}: {lines.Count} lines for {prompts.Count} prompts");
            var keep = EvalData.SpreadIndices(prompts.Count, limit, seed);
            var subset = Path.Combine(outDir, InputFile);
            if (Path.GetFullPath(subset) != Path.GetFullPath(inputPath))
                Reports.AtomicFile.WriteAllText(subset, string.Concat(keep.Select(i => lines[i] + "\n")));
            inputPath = subset;
            prompts = keep.Select(i => prompts[i]).ToList();
        }
        using var loaded = LoadedModel.Load(modelDir, adapterDir);
        // The format the adapter (or model) recorded when it was trained unless --template names one, as eval model/run do.
        var formatter = loaded.PromptFormat(template, log);
        var generator = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, formatter, settings);
        var path = Path.Combine(outDir, ResponsesFile);
        var done = ReadDone(path, log);
        var pending = prompts.Where(p => !done.Contains(p.Prompt)).ToList();
        if (done.Count > 0) log?.Invoke($"resuming: {prompts.Count - pending.Count} of {prompts.Count} prompts already answered in {path}");
        log?.Invoke($"ifeval: {pending.Count} prompts to generate with {modelDir}{(adapterDir is null ? "" : " + " + adapterDir)}, template {formatter.Name}, ≤ {settings.MaxNewTokens} new tokens");
        var progress = new EvalProgress(pending.Count, prompts.Count - pending.Count, prompts.Count, log);
        using (var w = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read), new UTF8Encoding(false)))
        {
            int batch = Math.Max(1, settings.BatchSize);
            for (int start = 0; start < pending.Count; start += batch)
            {
                var chunk = pending.Skip(start).Take(batch).ToList();
                var ids = chunk.Select(p => generator.PromptIds(p.Prompt)).ToList();
                // Instruction-aware models and iPEFT read the prompt's segments: the IFEval prompt is the instruction.
                var segments = loaded.Model.ReadsSegments
                    ? chunk.Select((p, i) => formatter.PromptSegments(new Data.Records.InstructionRecord(p.Prompt, "", "", "ifeval"), loaded.Tokenizer, ids[i])).ToList()
                    : null;
                var results = Generator.Generate(loaded.Model, ids, generator.Options(), segments);
                for (int i = 0; i < chunk.Count; i++)
                {
                    var text = InferenceTextGenerator.CutAtStop(loaded.Tokenizer.Decode(results[i].GeneratedIds, skipSpecialTokens: true), settings.StopStrings);
                    w.Write("{\"prompt\": " + IFEvalWriter.PyDumpsString(chunk[i].Prompt) + ", \"response\": " + IFEvalWriter.PyDumpsString(text) + "}\n");
                }
                w.Flush();
                ((FileStream)w.BaseStream).Flush(flushToDisk: true);
                progress.Batch(chunk.Count, results.Sum(r => r.GeneratedIds.Length));
            }
        }
        return (inputPath, path);
    }

    private static HashSet<string> ReadDone(string path, Action<string>? log)
    {
        var done = new HashSet<string>(StringComparer.Ordinal);
        if (!File.Exists(path)) return done;
        var good = new StringBuilder();
        int bad = 0;
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.String
                    && doc.RootElement.TryGetProperty("response", out var r) && r.ValueKind == JsonValueKind.String)
                {
                    done.Add(p.GetString()!);
                    good.Append(line).Append('\n');
                    continue;
                }
            }
            catch (JsonException) { }
            bad++;
        }
        if (bad > 0)
        {
            log?.Invoke($"{path}: {bad} unreadable line(s) (an interrupted write) dropped; those prompts run again");
            Reports.AtomicFile.WriteAllText(path, good.ToString());
        }
        return done;
    }

}
