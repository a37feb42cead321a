using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Evaluation.Judge;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.Suites;
using InstructTune.Reports;

namespace InstructTune.Evaluation.ModelBackends;

/// <summary>What <c>itune eval model</c> was asked to do.</summary>
public sealed record ModelEvaluationRequest(string ModelDir, string OutDir)
{
    public string? AdapterDir { get; init; }
    /// <summary>"builtin" or a suite JSON file.</summary>
    public string Suite { get; init; } = "builtin";
    public string? Template { get; init; }
    public EvalGenerationSettings Generation { get; init; } = new();
    /// <summary>Keep N items of each part of the suite, spread evenly (0 = all).</summary>
    public int Limit { get; init; }
    /// <summary>A judge YAML (OpenAI-compatible endpoint), or <c>local:DIR</c> for a local checkpoint as the judge.</summary>
    public string? Judge { get; init; }
}

/// <summary>Model facts and the reference perplexity, added to results.json under "Model" and as the report's first section.</summary>
public sealed record ModelRunInfo(string Model, string? Adapter, string Suite, string Template, int MaxNewTokens,
    double Temperature, int Limit, int Prompts, int TruncatedPrompts, PerplexityResult? ReferencePerplexity, double Seconds);

/// <summary>
/// The <c>itune eval model</c> recipe: open the model (and adapter), load and limit the suite, run every part of it
/// through <see cref="SuiteRunner"/> with an <see cref="InferenceTextGenerator"/> (and the judge when asked),
/// compute the perplexity of the instructions' reference answers, and write results.json, summary.md and
/// report.html atomically.
/// </summary>
public static class ModelEvaluation
{
    public static async Task<(EvaluationResults Results, ModelRunInfo Info)> RunAsync(ModelEvaluationRequest request,
        Action<string>? log = null, CancellationToken ct = default)
    {
        var suite = Limit(LoadSuite(request.Suite), request.Limit);
        using var loaded = LoadedModel.Load(request.ModelDir, request.AdapterDir);
        var formatter = loaded.PromptFormat(request.Template, log);
        log?.Invoke($"model {request.ModelDir}{(request.AdapterDir is null ? "" : $" + adapter {request.AdapterDir}")}, template {formatter.Describe()}, suite {suite.Name}");
        var generator = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, formatter, request.Generation);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var (judge, judgeBackend) = CreateJudge(request, log);
        EvaluationResults results;
        using (judgeBackend) results = await SuiteRunner.RunAsync(suite, generator, judge, ct);

        var pairs = suite.Instructions.SelectMany(i => i.References.Take(1).Select(r => (i.Instruction, r))).ToList();
        PerplexityResult? ppl = pairs.Count == 0 ? null
            : new InferenceLogProbScorer(loaded.Model).ReferencePerplexity(loaded.Tokenizer, formatter, pairs);
        var info = new ModelRunInfo(request.ModelDir, request.AdapterDir, request.Suite, formatter.Name, request.Generation.MaxNewTokens,
            request.Generation.Temperature, request.Limit, generator.Prompts, generator.TruncatedPrompts, ppl,
            clock.Elapsed.TotalSeconds);
        results = results with { Title = $"{results.Title} · {Path.GetFileName(Path.GetFullPath(request.ModelDir).TrimEnd('/'))}" };
        Write(results, info, request.OutDir);
        return (results, info);
    }

    public static EvalSuite LoadSuite(string suite) => suite == "builtin" ? BuiltinSuite.Create() : EvalSuite.Load(suite);

    /// <summary><paramref name="n"/> items of every part spread evenly over it (seeded, order kept; see
    /// <see cref="Run.EvalData.SpreadIndices"/>), so a limited run still reaches the later tasks of each part (0 =
    /// unchanged). The generalization split keeps its training examples (shots) and limits the evaluated ones.</summary>
    public static EvalSuite Limit(EvalSuite s, int n, int seed = 0)
    {
        if (n < 0) throw new EvalInputException($"--limit {n}: must be ≥ 0");
        if (n == 0) return s;
        List<T> Spread<T>(IReadOnlyList<T> items) =>
            n >= items.Count ? items.ToList() : Run.EvalData.SpreadIndices(items.Count, n, seed).Select(i => items[i]).ToList();
        return s with
        {
            Instructions = Spread(s.Instructions),
            Robustness = Spread(s.Robustness),
            Conversations = Spread(s.Conversations),
            Generalization = s.Generalization is { } g ? g with { Eval = Spread(g.Eval) } : null,
        };
    }

    /// <summary>The judge of <c>--judge</c>: a judge YAML (any chat endpoint its base_url names), or
    /// <c>local:MODEL_DIR[+ADAPTER_DIR]</c>: that checkpoint served in this process through
    /// <see cref="Serving.ChatClients"/> (the same IChatClient path as a remote endpoint, no network), greedy, one
    /// attempt each since greedy answers never change.</summary>
    private static (LlmJudge? Judge, ChatClientJudgeBackend? Backend) CreateJudge(ModelEvaluationRequest request, Action<string>? log)
    {
        if (request.Judge is null) return (null, null);
        JudgeConfig cfg;
        if (request.Judge.StartsWith(Serving.ChatClients.LocalPrefix, StringComparison.Ordinal))
        {
            var dir = request.Judge[Serving.ChatClients.LocalPrefix.Length..].Split('+')[0];
            if (!Directory.Exists(dir)) throw new EvalInputException($"--judge {request.Judge}: model folder {dir} not found");
            cfg = new JudgeConfig
            {
                BaseUrl = request.Judge, Model = "", MaxAttempts = 1, MaxConcurrency = 4, AttemptTimeout = TimeSpan.FromMinutes(10),
                CachePath = Path.Combine(request.OutDir, "judge_cache.jsonl"),
            };
        }
        else
        {
            cfg = JudgeConfigFile.Load(request.Judge);
            cfg = cfg with { CachePath = cfg.CachePath ?? Path.Combine(request.OutDir, "judge_cache.jsonl") };
        }
        var backend = new ChatClientJudgeBackend(cfg);
        log?.Invoke($"judge: {cfg}");
        return (new LlmJudge(backend, cfg, log), backend);
    }

    /// <summary>results.json (the evaluation area's shape plus a "Model" object), summary.md and report.html
    /// with a "Model" section first.</summary>
    public static void Write(EvaluationResults results, ModelRunInfo info, string dir)
    {
        Directory.CreateDirectory(dir);
        var json = JsonSerializer.SerializeToNode(results, EvaluationReport.Json)!.AsObject();
        json["Model"] = JsonSerializer.SerializeToNode(info, EvaluationReport.Json);
        AtomicFile.WriteAllText(Path.Combine(dir, "results.json"), json.ToJsonString(EvaluationReport.Json));
        var report = EvaluationReport.Build(results);
        var section = new ReportSection("Model");
        report.Sections.Insert(0, section);
        string F(double v, string f = "0.000") => double.IsFinite(v) ? v.ToString(f, CultureInfo.InvariantCulture) : "n/a";
        section.Table(["field", "value"],
        [
            ["model", info.Model], ["adapter", info.Adapter ?? "none"], ["suite", info.Suite], ["prompt template", info.Template],
            ["decoding", info.Temperature == 0 ? $"greedy, ≤ {info.MaxNewTokens} new tokens" : $"temperature {F(info.Temperature, "0.##")}, ≤ {info.MaxNewTokens} new tokens"],
            ["limit", info.Limit == 0 ? "none" : info.Limit.ToString(CultureInfo.InvariantCulture)],
            ["prompts generated", info.Prompts.ToString(CultureInfo.InvariantCulture)],
            ["prompts truncated to fit", info.TruncatedPrompts.ToString(CultureInfo.InvariantCulture)],
            ["reference perplexity", info.ReferencePerplexity is { } p ? $"{F(p.Perplexity, "0.###")} over {p.Tokens} tokens (mean log-likelihood {F(p.MeanLogLikelihood, "0.0000")})" : "n/a"],
            ["seconds", F(info.Seconds, "0.0")],
        ]);
        section.Paragraph("Reference perplexity: exp(−mean log p(token)) over the first reference answer of each instruction, given its formatted prompt (prompt tokens not scored).");
        report.WriteMarkdown(Path.Combine(dir, "summary.md"));
        report.WriteHtml(Path.Combine(dir, "report.html"));
    }
}
