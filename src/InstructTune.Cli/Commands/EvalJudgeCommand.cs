using System.CommandLine;
using System.Text.Json;
using InstructTune.Evaluation.Judge;
using InstructTune.Evaluation.Metrics;
using InstructTune.Reports;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune eval judge --input items.jsonl --out DIR [--config judge.yaml] [--base-url URL] [--model M]
/// [--cache F] [--pairwise]</c>: LLM-as-a-judge over an OpenAI-compatible endpoint. IRS lines are
/// <c>{"id","instruction","response","reference"?}</c>; pairwise lines <c>{"id","instruction","response_a","response_b"}</c>.
/// Writes DIR/judgements.jsonl (one line per input: made or failed with the reason). Exit 0 when every judgement
/// was made, 1 when some failed, 2 on bad input.
/// </summary>
public static class EvalJudgeCommand
{
    public static Command Create()
    {
        var command = new Command("judge", "LLM-as-a-judge (IRS rubric or pairwise) through an OpenAI-compatible endpoint, cached and retried");
        var input = new Option<string>("--input") { Description = "JSONL of {id, instruction, response, reference?} (or response_a/response_b with --pairwise)", Required = true };
        var outDir = new Option<string>("--out") { Description = "output folder for judgements.jsonl", Required = true };
        var config = new Option<string?>("--config") { Description = "judge YAML (base_url, model, api_key_env, max_attempts, attempt_timeout_s, cache, …)" };
        var baseUrl = new Option<string?>("--base-url") { Description = "endpoint base URL, e.g. http://127.0.0.1:8000/v1, or local:MODEL_DIR[+ADAPTER_DIR] for a checkpoint served in this process (default: config, then OPENAI_BASE_URL)" };
        var model = new Option<string?>("--model") { Description = "judge model name" };
        var cache = new Option<string?>("--cache") { Description = "JSONL cache of judgements (default: DIR/judge_cache.jsonl)" };
        var pairwise = new Option<bool>("--pairwise") { Description = "compare response_a with response_b (both orders) instead of scoring one response" };
        foreach (var o in new Option[] { input, outDir, config, baseUrl, model, cache, pairwise }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            try
            {
                var dir = parse.GetValue(outDir)!;
                var cfg = parse.GetValue(config) is { } file ? JudgeConfigFile.Load(file) : new JudgeConfig().WithEnvironment();
                if (parse.GetValue(baseUrl) is { } u) cfg = cfg with { BaseUrl = u };
                if (parse.GetValue(model) is { } m) cfg = cfg with { Model = m };
                // A local judge decodes greedily: asking again gets the same answer.
                if (cfg.BaseUrl.StartsWith(InstructTune.Serving.ChatClients.LocalPrefix, StringComparison.Ordinal)) cfg = cfg with { MaxAttempts = 1 };
                cfg = cfg with { CachePath = parse.GetValue(cache) ?? cfg.CachePath ?? Path.Combine(dir, "judge_cache.jsonl") };
                Console.Error.WriteLine($"judge: {cfg}");
                using var backend = new ChatClientJudgeBackend(cfg);
                var judge = new LlmJudge(backend, cfg, line => Console.Error.WriteLine(line));
                var lines = ReadLines(parse.GetValue(input)!);
                IReadOnlyList<Judgement> results = parse.GetValue(pairwise)
                    ? judge.JudgePairwiseBothOrdersAsync(lines.Select(l => new PairwiseItem(l.Id, l.Get("instruction"), l.Get("response_a"), l.Get("response_b"))).ToList()).GetAwaiter().GetResult()
                    : judge.JudgeIrsAsync(lines.Select(l => new IrsItem(l.Id, l.Get("instruction"), l.Get("response"), l.GetOptional("reference"))).ToList()).GetAwaiter().GetResult();
                var sb = new System.Text.StringBuilder();
                foreach (var r in results)
                    sb.Append(JsonSerializer.Serialize(new
                    {
                        id = r.Id, ok = r.Ok, score = r.Score, winner = r.Winner?.ToString(), error = r.Error,
                        attempts = r.Attempts, from_cache = r.FromCache, raw = r.Raw,
                    })).Append('\n');
                AtomicFile.WriteAllText(Path.Combine(dir, "judgements.jsonl"), sb.ToString());
                int failed = results.Count(r => !r.Ok);
                var scores = results.Where(r => r.Score is not null).Select(r => r.Score!.Value).ToList();
                Console.WriteLine($"{results.Count} judgements: {results.Count - failed} made, {failed} failed" +
                                  (scores.Count > 0 ? $", mean IRS {scores.Average():0.00}" : ""));
                return failed == 0 ? 0 : 1;
            }
            catch (EvalInputException ex)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 2;
            }
        });
        return command;
    }

    private sealed record Line(string Path, int No, string Id, JsonElement Root)
    {
        public string Get(string field) =>
            Root.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()!
                : throw new EvalInputException($"{Path}:{No}: {field}: missing or not a string");

        public string? GetOptional(string field) =>
            Root.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }

    private static List<Line> ReadLines(string path)
    {
        if (!File.Exists(path)) throw new EvalInputException($"{path}: file not found");
        var lines = new List<Line>();
        var errors = new List<string>();
        int no = 0;
        foreach (var text in File.ReadLines(path))
        {
            no++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            try
            {
                var root = JsonDocument.Parse(text).RootElement;
                var id = root.TryGetProperty("id", out var idEl) ? idEl.ToString() : no.ToString(System.Globalization.CultureInfo.InvariantCulture);
                lines.Add(new Line(path, no, id, root));
            }
            catch (JsonException ex) { errors.Add($"{path}:{no}: not valid JSON ({ex.Message.Split('\n')[0]})"); }
        }
        if (errors.Count > 0) throw new EvalInputException(string.Join('\n', errors));
        return lines;
    }
}
