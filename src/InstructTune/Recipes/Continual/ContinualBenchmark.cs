// itune continual: runs one staged recipe (data.stages) once per continual-learning strategy × seed and writes one
// report. A strategy is a documented set of recipe overrides (ContinualStrategies); every strategy first clears the
// others' keys (loss.ewc_lambda 0, continual.gem off, no replay), so each run differs from sequential in one thing.
// Runs go to OUT/<strategy>/seed<S>/ (ordinary run folders, each writing its forgetting.json); a run that finished
// (OUT/<strategy>/seed<S>/continual-run.json) is skipped when the command is run again, one that was interrupted
// resumes from its latest checkpoint (as `itune train --resume latest`), one with no checkpoint starts over.
// OUT/continual.json and OUT/continual.html are rewritten after every run: per strategy and metric (token accuracy,
// exact match) the mean ± sample std over seeds of ACC, BWT, FWT and forgetting, plus each seed's matrices.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using InstructTune.Reports;
using InstructTune.Training.Loop;
using InstructTune.Training.Checkpointing;
using InstructTune.Training.Config;
using InstructTune.Training.Continual;

namespace InstructTune.Recipes.Continual;

/// <summary>A continual-learning strategy: a name, what it does, and the overrides it applies to the staged recipe.</summary>
public sealed record ContinualStrategy(string Name, string Description, Func<TrainConfig, IReadOnlyList<string>> Overrides);

public static class ContinualStrategies
{
    /// <summary>The replay share every stage after the first draws from earlier stages (strategy replay).</summary>
    public const double ReplayShare = 0.3;
    /// <summary>λ of the EWC strategies (loss.ewc_lambda).</summary>
    public const double EwcLambda = 1000;
    /// <summary>λ of the l2 strategy (continual.l2_previous_lambda), not tuned.</summary>
    public const double L2Lambda = 100;

    // A λ, γ or replay share the config (or a key=value override) gives is used by its own strategy instead of the
    // default, and cleared for the others.
    public static readonly IReadOnlyList<ContinualStrategy> All =
    [
        new("sequential", "plain sequential fine-tuning, stage after stage (no protection)", c => Stages(c, 0)),
        new("replay", $"data.stages[k].replay = {ReplayShare} (or the stage's own replay) for every stage after the first (earlier stages' examples mixed in)", c => Stages(c, ReplayShare)),
        new("ewc", $"EWC across stages, loss.ewc_lambda = {EwcLambda} (or the config's), one penalty per earlier stage", c => [.. Stages(c, 0), $"loss.ewc_lambda={Lambda(c)}", "continual.ewc_gamma=1"]),
        new("online-ewc", $"online EWC, loss.ewc_lambda = {EwcLambda}, continual.ewc_gamma = 0.9 (or the config's)", c => [.. Stages(c, 0), $"loss.ewc_lambda={Lambda(c)}",
            string.Create(CultureInfo.InvariantCulture, $"continual.ewc_gamma={(c.Continual.EwcGamma < 1 ? c.Continual.EwcGamma : 0.9):R}")]),
        new("l2", $"L2 toward the previous stage's final weights, continual.l2_previous_lambda = {L2Lambda} (or the config's): the simple baseline beside EWC",
            c => [.. Stages(c, 0), string.Create(CultureInfo.InvariantCulture, $"continual.l2_previous_lambda={(c.Continual.L2PreviousLambda > 0 ? c.Continual.L2PreviousLambda : L2Lambda):R}")]),
        new("agem", "A-GEM over an episodic memory of earlier stages (continual.gem = agem)", c => [.. Stages(c, 0), "continual.gem=agem"]),
        new("gem", "GEM, one constraint per earlier stage (continual.gem = gem)", c => [.. Stages(c, 0), "continual.gem=gem"]),
        new("progressive", "progressive adapters: a LoRA column per stage, earlier columns frozen (training.method = progressive)", c => [.. Stages(c, 0), "training.method=progressive"]),
    ];

    private static string Lambda(TrainConfig c) => (c.Loss.EwcLambda > 0 ? c.Loss.EwcLambda : EwcLambda).ToString("R", CultureInfo.InvariantCulture);

    // Every strategy resets the others' keys, then data.stages is rewritten with the given replay share after stage 1.
    private static List<string> Stages(TrainConfig c, double replay)
    {
        var list = c.Data.Stages.Select((s, k) => string.Create(CultureInfo.InvariantCulture,
            $"{{epochs: {s.Epochs}, max_steps: {s.MaxSteps}, learning_rate: {s.LearningRate:R}, replay: {(k == 0 || replay == 0 ? 0 : s.Replay > 0 ? s.Replay : replay):R}}}"));
        return ["loss.ewc_lambda=0", "continual.gem=off", "continual.l2_previous_lambda=0", "data.stages=[" + string.Join(", ", list) + "]"];
    }

    /// <summary>The strategies named in a comma-separated list, in order; an unknown or repeated name is refused naming --strategies.</summary>
    public static IReadOnlyList<ContinualStrategy> Parse(string list)
    {
        var names = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string known = string.Join(", ", All.Select(s => s.Name));
        if (names.Length == 0) throw new Common.InputException($"--strategies: name at least one strategy ({known})");
        var result = new List<ContinualStrategy>();
        foreach (var n in names)
        {
            if (result.Any(s => s.Name == n)) throw new Common.InputException($"--strategies: \"{n}\" is named twice");
            result.Add(All.FirstOrDefault(s => s.Name == n) ?? throw new Common.InputException($"--strategies: unknown strategy \"{n}\"; known: {known}"));
        }
        return result;
    }
}

public sealed record ContinualStat(double Mean, double Std);

/// <summary>The four numbers of one metric (Lopez-Paz &amp; Ranzato; Chaudhry et al.; see <see cref="ForgettingReport"/>).</summary>
public sealed record ContinualMetricStats(ContinualStat AverageAccuracy, ContinualStat BackwardTransfer, ContinualStat ForwardTransfer, ContinualStat Forgetting);

public sealed record ContinualRun(string Strategy, int Seed, string RunDir, int Steps,
    IReadOnlyDictionary<string, ForgettingReport.Summary> Summary, IReadOnlyDictionary<string, double[][]> Matrices, string? ConfigSha256 = null);

public sealed record ContinualStrategySummary(string Strategy, string Description, IReadOnlyList<string> Overrides, int Runs,
    IReadOnlyList<int> Seeds, IReadOnlyDictionary<string, ContinualMetricStats> Metrics, IReadOnlyDictionary<string, double[][]> MeanMatrices);

public sealed record ContinualBenchmarkReport(string Config, IReadOnlyList<string> Overrides, IReadOnlyList<string> Stages, IReadOnlyList<int> Seeds,
    bool Complete, IReadOnlyList<ContinualStrategySummary> Strategies, IReadOnlyList<ContinualRun> Runs, string Definitions);

public static class ContinualBenchmark
{
    public const string JsonFile = "continual.json", HtmlFile = "continual.html", RunFile = "continual-run.json";
    /// <summary>The metrics aggregated (forgetting.json's summary metrics).</summary>
    public static readonly IReadOnlyList<string> Metrics = ["token_accuracy", "exact_match"];

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>Binds and validates every strategy's config for one seed offset (bad keys fail before anything trains).</summary>
    public static TrainConfig Bind(string configPath, IReadOnlyList<string> overrides, ContinualStrategy s, int seedOffset, string outDir)
    {
        var basic = ConfigLoader.Load<TrainConfig>(configPath, overrides);
        if (basic.Data.Stages.Count < 2)
            throw new ConfigException($"data.stages: {configPath} has {basic.Data.Stages.Count} stage(s); itune continual needs a staged recipe with two or more (docs/CONTINUAL.md)", "data.stages");
        if (basic.Training.Method == TuningMethod.Progressive)
            throw new ConfigException("training.method: progressive is a strategy of itune continual (--strategies progressive); give the config training.method lora", "training.method");
        int seed = basic.Training.Seed + seedOffset;
        var run = Path.Combine(outDir, s.Name, $"seed{seed}");
        try
        {
            var config = ConfigLoader.Load<TrainConfig>(configPath, [.. overrides, .. s.Overrides(basic), $"training.seed={seed}",
                $"checkpoint.output_dir={run}", "logging.tensor_board=false", "continual.forgetting_report=true"]);
            FineTuneRecipe.Validate(config);
            return config;
        }
        catch (ConfigException e) { throw new ConfigException($"strategy {s.Name}: {e.Message}", e.Key); }
    }

    public static ContinualBenchmarkReport Run(string configPath, IReadOnlyList<string> overrides, IReadOnlyList<ContinualStrategy> strategies,
        int seeds, string outDir, Action<string>? say = null, bool quiet = true, CancellationToken cancel = default, Action<StepResult>? onStep = null)
    {
        if (seeds < 1) throw new Common.InputException($"--seeds: {seeds}; need at least 1");
        if (!File.Exists(configPath)) throw new Common.InputException($"--config: {configPath} not found");
        foreach (var s in strategies) Bind(configPath, overrides, s, 0, outDir);
        int baseSeed = ConfigLoader.Load<TrainConfig>(configPath, overrides).Training.Seed;
        var seedList = Enumerable.Range(baseSeed, seeds).ToList();
        Directory.CreateDirectory(outDir);
        var runs = new List<ContinualRun>();
        int total = strategies.Count * seeds, n = 0;
        foreach (var s in strategies)
            foreach (var seed in seedList)
            {
                cancel.ThrowIfCancellationRequested();
                var config = Bind(configPath, overrides, s, seed - baseSeed, outDir);
                var dir = config.Checkpoint.OutputDir;
                string tag = $"[{++n}/{total}] {s.Name}, seed {seed}";
                var donePath = Path.Combine(dir, RunFile);
                if (File.Exists(donePath))
                {
                    say?.Invoke($"{tag}: finished earlier, skipped ({dir})");
                    var earlier = JsonSerializer.Deserialize<ContinualRun>(File.ReadAllText(donePath), Json)!;
                    if (earlier.ConfigSha256 is { } sha && sha != ConfigSha(config))
                        throw new Common.InputException($"--out: {dir} holds a finished run of another config (its config.yaml differs from this strategy's); name a new --out or delete that folder");
                    runs.Add(earlier);
                }
                else
                {
                    string? resume = new CheckpointStore(dir).Latest();
                    bool overwrite = resume == null && RunFolder.HoldsRun(dir);
                    say?.Invoke($"{tag}: {(resume != null ? $"resuming from {Path.GetFileName(resume)}" : overwrite ? "interrupted before its first checkpoint, starting over" : "training")} ({dir})");
                    using (var recipe = FineTuneRecipe.Setup(config, resume, start: new RunStartOptions(Overwrite: overwrite)))
                    {
                        
                        var summary = recipe.Train(r =>
                        {
                            if (quiet && say != null && r.Step % 50 == 0) say($"{tag}: step {r.Step}");
                            onStep?.Invoke(r);
                        }, quiet: quiet, cancel);
                        if (cancel.IsCancellationRequested)
                        {
                            // Train saved a checkpoint at the step it reached: the next invocation resumes from it.
                            Write(outDir, Summarise(configPath, overrides, strategies, seedList, runs, complete: false));
                            say?.Invoke($"{tag}: stopped at step {summary.Steps}; run the command again to resume");
                            throw new OperationCanceledException(cancel);
                        }
                        var run = FromForgetting(s.Name, seed, dir, summary.Steps) with { ConfigSha256 = ConfigSha(config) };
                        Checkpoints.AtomicFile.WriteAllText(donePath, JsonSerializer.Serialize(run, Json));
                        runs.Add(run);
                    }
                }
                Write(outDir, Summarise(configPath, overrides, strategies, seedList, runs, runs.Count == total));
            }
        var report = Summarise(configPath, overrides, strategies, seedList, runs, complete: true);
        Write(outDir, report);
        return report;
    }

    private static string ConfigSha(TrainConfig config) => Data.Cache.CacheManifest.Sha256OfText(ConfigLoader.ToYaml(config));

    /// <summary>One finished run's matrices and summary, read from its forgetting.json.</summary>
    public static ContinualRun FromForgetting(string strategy, int seed, string runDir, int steps)
    {
        var path = Path.Combine(runDir, ForgettingReport.JsonFile);
        if (!File.Exists(path)) throw new InvalidOperationException($"{runDir}: the run finished without {ForgettingReport.JsonFile}");
        var doc = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        if (!doc.GetProperty("complete").GetBoolean())
            throw new Common.InputException($"{path}: the run ended before its last stage (early stopping? eval.early_stopping_patience), so its forgetting matrix is incomplete");
        var matrices = doc.GetProperty("matrices").EnumerateObject().ToDictionary(p => p.Name,
            p => p.Value.EnumerateArray().Select(r => r.EnumerateArray().Select(Number).ToArray()).ToArray());
        var summary = doc.GetProperty("summary").EnumerateObject().ToDictionary(p => p.Name,
            p => JsonSerializer.Deserialize<ForgettingReport.Summary>(p.Value.GetRawText(), Json)!);
        return new ContinualRun(strategy, seed, Path.GetFullPath(runDir), steps, summary, matrices);
    }

    private static double Number(JsonElement e) => e.ValueKind == JsonValueKind.String
        ? double.Parse(e.GetString()!, CultureInfo.InvariantCulture) : e.GetDouble();

    /// <summary>Mean and sample standard deviation (n − 1; 0 for one value); NaN values are left out (NaN when none is left).</summary>
    public static ContinualStat MeanStd(IEnumerable<double> values)
    {
        var xs = values.Where(double.IsFinite).ToList();
        if (xs.Count == 0) return new ContinualStat(double.NaN, double.NaN);
        double mean = xs.Average();
        double std = xs.Count > 1 ? Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Count - 1)) : 0;
        return new ContinualStat(mean, std);
    }

    public static ContinualBenchmarkReport Summarise(string configPath, IReadOnlyList<string> overrides, IReadOnlyList<ContinualStrategy> strategies,
        IReadOnlyList<int> seeds, IReadOnlyList<ContinualRun> runs, bool complete)
    {
        var basic = ConfigLoader.Load<TrainConfig>(configPath, overrides);
        var summaries = new List<ContinualStrategySummary>();
        foreach (var s in strategies)
        {
            var rs = runs.Where(r => r.Strategy == s.Name).ToList();
            if (rs.Count == 0) continue;
            var metrics = new Dictionary<string, ContinualMetricStats>();
            foreach (var m in Metrics)
            {
                var ms = rs.Where(r => r.Summary.ContainsKey(m)).Select(r => r.Summary[m]).ToList();
                if (ms.Count == 0) continue;
                metrics[m] = new ContinualMetricStats(MeanStd(ms.Select(x => x.AverageAccuracy)), MeanStd(ms.Select(x => x.BackwardTransfer)),
                    MeanStd(ms.Select(x => x.ForwardTransfer)), MeanStd(ms.Select(x => x.Forgetting)));
            }
            var means = rs[0].Matrices.Keys.ToDictionary(k => k, k => rs[0].Matrices[k].Select((row, i) =>
                row.Select((_, j) => rs.Average(r => r.Matrices[k][i][j])).ToArray()).ToArray());
            summaries.Add(new ContinualStrategySummary(s.Name, s.Description, s.Overrides(basic), rs.Count, rs.Select(r => r.Seed).ToList(), metrics, means));
        }
        var stages = Enumerable.Range(1, basic.Data.Stages.Count).Select(k => string.Join("+",
            basic.Data.Datasets.Where(d => d.Stage == k).Select(d => Path.GetFileNameWithoutExtension(d.Path)))).ToList();
        return new ContinualBenchmarkReport(Path.GetFullPath(configPath), overrides, stages, seeds, complete, summaries, runs,
            "Per run (forgetting.json): R[i][j] = score on stage j's held-out set after stage i (row 0: the starting model); ACC = mean_j R[T][j]; " +
            "BWT = mean_{j<T} (R[T][j] - R[j][j]); FWT = mean_{j>=2} (R[j-1][j] - R[0][j]); forgetting = mean_{j<T} (max_{1<=l<T} R[l][j] - R[T][j]). " +
            "Per strategy: mean and sample standard deviation (n - 1) of each number over the seeds; mean_matrices = the element-wise mean of the seeds' matrices.");
    }

    public static void Write(string outDir, ContinualBenchmarkReport report)
    {
        Checkpoints.AtomicFile.WriteAllText(Path.Combine(outDir, JsonFile), JsonSerializer.Serialize(report, Json));
        Html(report).WriteHtml(Path.Combine(outDir, HtmlFile));
    }

    private static string F(ContinualStat s) => double.IsFinite(s.Mean)
        ? string.Create(CultureInfo.InvariantCulture, $"{s.Mean:+0.0000;-0.0000;0.0000} ± {s.Std:0.0000}") : "n/a";

    private static Report Html(ContinualBenchmarkReport r)
    {
        var report = new Report("Continual-learning strategies");
        var head = report.Section("Setup")
            .Paragraph($"Config {r.Config}; overrides: {(r.Overrides.Count == 0 ? "none" : string.Join(" ", r.Overrides))}; seeds {string.Join(", ", r.Seeds)}; stages: {string.Join(" → ", r.Stages)}.")
            .Paragraph("Mean ± sample standard deviation over seeds. ACC: average score after the last stage; BWT < 0 means forgetting; " +
                       "FWT: how much earlier stages help a later one before it is trained; forgetting: the average drop from each stage's best score.");
        if (!r.Complete) head.Paragraph("Incomplete: the benchmark is still running or was interrupted; the runs so far are shown.");
        foreach (var m in Metrics)
        {
            var rows = r.Strategies.Where(s => s.Metrics.ContainsKey(m)).ToList();
            if (rows.Count == 0) continue;
            report.Section(m.Replace('_', ' ')).Table(["strategy", "runs", "ACC", "BWT", "FWT", "forgetting"],
                rows.Select(s => (IReadOnlyList<string>)[s.Strategy, s.Runs.ToString(CultureInfo.InvariantCulture),
                    F(s.Metrics[m].AverageAccuracy), F(s.Metrics[m].BackwardTransfer), F(s.Metrics[m].ForwardTransfer), F(s.Metrics[m].Forgetting)]));
        }
        var rowLabels = Enumerable.Range(0, r.Stages.Count + 1).Select(i => i == 0 ? "start" : $"after {i}").ToList();
        var colLabels = r.Stages.Select((n, j) => $"{j + 1}: {n}").ToList();
        foreach (var s in r.Strategies)
        {
            if (!s.MeanMatrices.TryGetValue("token_accuracy", out var mat) || mat.Length != rowLabels.Count) continue;
            report.Section($"{s.Strategy}: token accuracy R[i][j]")
                .Paragraph($"{s.Description}. Mean over {s.Runs} seed(s).")
                .Heatmap(new HeatmapChart($"{s.Strategy}: token accuracy (mean over seeds)", rowLabels, colLabels, mat.Select(x => (IReadOnlyList<double>)x).ToList()));
        }
        report.Section("Runs").Table(["strategy", "seed", "steps", "ACC (token)", "BWT (token)", "run folder"],
            r.Runs.Select(x => (IReadOnlyList<string>)[x.Strategy, x.Seed.ToString(CultureInfo.InvariantCulture), x.Steps.ToString(CultureInfo.InvariantCulture),
                x.Summary.TryGetValue("token_accuracy", out var t) ? t.AverageAccuracy.ToString("F4", CultureInfo.InvariantCulture) : "–",
                x.Summary.TryGetValue("token_accuracy", out var u) ? u.BackwardTransfer.ToString("+0.0000;-0.0000;0.0000", CultureInfo.InvariantCulture) : "–", x.RunDir]));
        report.Section("Definitions").Paragraph(r.Definitions);
        return report;
    }
}
