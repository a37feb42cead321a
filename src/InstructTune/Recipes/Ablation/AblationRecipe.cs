// itune ablate: trains every named variant (AblationVariants) with the same config, data, steps and seed set, and
// writes one report: per run and per variant (mean ± sample std over seeds) the held-out loss, the final training
// loss, trainable and total parameters, the mean step time and its overhead over the first variant (baseline), and
// the memory the trainable parameters plan for (weights + gradients + AdamW moments, 16 bytes each); and, when the
// config names held-out sets (eval.heldout) or an IFEval file is given, every run evaluated on the same sets
// (AblationEvaluation: exact match / F1 per set and per complexity level, IFEval accuracies, the temperature head's
// error), aggregated mean ± std per metric per variant.
// Runs go to OUT/<variant>/seed<k>/ (each an ordinary run folder); OUT/ablation.json and OUT/ablation.html are
// rewritten after every run, so an interrupted ablation keeps what it measured.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using InstructTune.Reports;
using InstructTune.Training.Config;

namespace InstructTune.Recipes.Ablation;

public sealed record AblationRun(
    [property: JsonPropertyName("variant")] string Variant,
    [property: JsonPropertyName("seed")] int Seed,
    [property: JsonPropertyName("steps")] int Steps,
    [property: JsonPropertyName("eval_loss")] double? EvalLoss,
    [property: JsonPropertyName("final_train_loss")] double FinalTrainLoss,
    [property: JsonPropertyName("trainable_params")] long TrainableParams,
    [property: JsonPropertyName("total_params")] long TotalParams,
    [property: JsonPropertyName("step_seconds")] double StepSeconds,
    [property: JsonPropertyName("trainable_state_mib")] double TrainableStateMiB,
    [property: JsonPropertyName("run_dir")] string RunDir,
    [property: JsonPropertyName("eval")] IReadOnlyDictionary<string, double>? Eval = null);

/// <summary>One evaluation metric over a variant's seeds: mean, sample standard deviation, runs that have it.</summary>
public sealed record AblationMetric(
    [property: JsonPropertyName("mean")] double Mean,
    [property: JsonPropertyName("std")] double Std,
    [property: JsonPropertyName("n")] int N);

public sealed record AblationSummary(
    [property: JsonPropertyName("variant")] string Variant,
    [property: JsonPropertyName("overrides")] IReadOnlyList<string> Overrides,
    [property: JsonPropertyName("runs")] int Runs,
    [property: JsonPropertyName("eval_loss_mean")] double? EvalLossMean,
    [property: JsonPropertyName("eval_loss_std")] double? EvalLossStd,
    [property: JsonPropertyName("final_train_loss_mean")] double FinalTrainLossMean,
    [property: JsonPropertyName("final_train_loss_std")] double FinalTrainLossStd,
    [property: JsonPropertyName("trainable_params")] long TrainableParams,
    [property: JsonPropertyName("total_params")] long TotalParams,
    [property: JsonPropertyName("step_seconds_mean")] double StepSecondsMean,
    [property: JsonPropertyName("step_time_overhead")] double? StepTimeOverhead,
    [property: JsonPropertyName("trainable_state_mib")] double TrainableStateMiB,
    [property: JsonPropertyName("eval")] IReadOnlyDictionary<string, AblationMetric>? Eval = null);

public sealed record AblationReport(
    [property: JsonPropertyName("config")] string Config,
    [property: JsonPropertyName("overrides")] IReadOnlyList<string> Overrides,
    [property: JsonPropertyName("seeds")] IReadOnlyList<int> Seeds,
    [property: JsonPropertyName("variants")] IReadOnlyList<AblationSummary> Variants,
    [property: JsonPropertyName("runs")] IReadOnlyList<AblationRun> Runs,
    [property: JsonPropertyName("complete")] bool Complete);

public static class AblationRecipe
{
    public const string JsonFile = "ablation.json", HtmlFile = "ablation.html";

    /// <param name="configPath">The recipe every variant starts from (YAML).</param>
    /// <param name="overrides">key=value applied to every variant before its own overrides.</param>
    /// <param name="seeds">How many seeds: training.seed, training.seed + 1, …</param>
    /// <param name="eval">The evaluation after each run (null: the config's eval.heldout sets with its eval.limit, no IFEval).</param>
    public static AblationReport Run(string configPath, IReadOnlyList<string> overrides, IReadOnlyList<AblationVariant> variants,
        int seeds, string outDir, Action<string>? say = null, CancellationToken cancel = default, AblationEvalOptions? eval = null)
    {
        if (seeds < 1) throw new Common.InputException($"seeds: {seeds}; need at least 1");
        eval ??= new AblationEvalOptions();
        if (eval.Limit is < 0) throw new Common.InputException($"--eval-limit {eval.Limit}: must be ≥ 0");
        if (eval.Limit is { } limit) overrides = [.. overrides, $"eval.limit={limit}"];
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new Common.InputException($"output folder {outDir} is not empty; name a new one");
        // Every variant's config is bound (and validated) before the first run trains, so a bad override fails fast.
        var configs = variants.Select(v => (v, Bind(configPath, overrides, v, 0, outDir))).ToList();
        foreach (var (_, c) in configs) AblationEvaluation.Check(c, eval);
        int baseSeed = configs[0].Item2.Training.Seed;
        var seedList = Enumerable.Range(baseSeed, seeds).ToList();
        Directory.CreateDirectory(outDir);
        var runs = new List<AblationRun>();
        int total = variants.Count * seeds, done = 0;
        foreach (var (variant, _) in configs)
            for (int k = 0; k < seeds; k++)
            {
                cancel.ThrowIfCancellationRequested();
                var config = Bind(configPath, overrides, variant, seedList[k] - baseSeed, outDir);
                say?.Invoke($"[{++done}/{total}] {variant.Name}, seed {config.Training.Seed}");
                var run = TrainOne(variant, config, cancel);
                if (AblationEvaluation.Active(config, eval)) run = run with { Eval = AblationEvaluation.Evaluate(config, eval, say, cancel) };
                runs.Add(run);
                Write(outDir, Summarise(configPath, overrides, variants, seedList, runs, complete: runs.Count == total));
            }
        var report = Summarise(configPath, overrides, variants, seedList, runs, complete: true);
        Write(outDir, report);
        return report;
    }

    private static TrainConfig Bind(string configPath, IReadOnlyList<string> overrides, AblationVariant v, int seedOffset, string outDir)
    {
        var probe = ConfigLoader.Load<TrainConfig>(configPath, [.. overrides, .. v.Overrides]);
        int seed = probe.Training.Seed + seedOffset;
        var run = Path.Combine(outDir, v.Name, $"seed{seed}");
        TrainConfig config;
        try
        {
            config = ConfigLoader.Load<TrainConfig>(configPath, [.. overrides, .. v.Overrides, $"training.seed={seed}",
                $"checkpoint.output_dir={run}", "logging.tensor_board=false"]);
            FineTuneRecipe.Validate(config);
        }
        catch (ConfigException e) { throw new ConfigException($"variant {v.Name}: {e.Message}", e.Key); }
        return config;
    }

    private static AblationRun TrainOne(AblationVariant v, TrainConfig config, CancellationToken cancel)
    {
        var recipe = FineTuneRecipe.Setup(config);
        long trainable = recipe.Trainer.Trainable.Sum(t => (long)t.Parameter.Length);
        long total = TotalParameters(recipe);
        var stepTimes = new List<double>();
        var clock = Stopwatch.StartNew();
        var summary = recipe.Train(r => { stepTimes.Add(clock.Elapsed.TotalSeconds); clock.Restart(); }, quiet: true, cancel);
        // The first step pays for warm-up (JIT, buffers): the mean is over the others when there are any.
        double stepSeconds = stepTimes.Count > 1 ? stepTimes.Skip(1).Average() : stepTimes.DefaultIfEmpty(double.NaN).Average();
        double? evalLoss = summary.ValidationLoss ?? NaNToNull(recipe.ValidationLoss());
        return new AblationRun(v.Name, config.Training.Seed, summary.Steps, evalLoss, summary.FinalLoss, trainable, total,
            stepSeconds, trainable * 16.0 / (1 << 20), config.Checkpoint.OutputDir);
    }

    private static long TotalParameters(FineTuneRecipe recipe)
    {
        var model = recipe.Model;
        long dense = model.NamedParameters().Sum(p => (long)p.Parameter.Length);
        long nf4 = model.NamedModules().Select(m => m.Module).OfType<Peft.Qlora.Nf4Linear>().Sum(q => (long)q.InFeatures * q.OutFeatures);
        return dense + nf4;
    }

    private static double? NaNToNull(double x) => double.IsNaN(x) ? null : x;

    private static (double Mean, double Std) MeanStd(IReadOnlyList<double> xs)
    {
        double mean = xs.Average();
        double std = xs.Count > 1 ? Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Count - 1)) : 0;
        return (mean, std);
    }

    public static AblationReport Summarise(string configPath, IReadOnlyList<string> overrides, IReadOnlyList<AblationVariant> variants,
        IReadOnlyList<int> seeds, IReadOnlyList<AblationRun> runs, bool complete)
    {
        var summaries = new List<AblationSummary>();
        double? baseStep = null;
        foreach (var v in variants)
        {
            var rs = runs.Where(r => r.Variant == v.Name).ToList();
            if (rs.Count == 0) continue;
            var evals = rs.Where(r => r.EvalLoss.HasValue).Select(r => r.EvalLoss!.Value).ToList();
            var (em, es) = evals.Count > 0 ? MeanStd(evals) : (double.NaN, double.NaN);
            var (tm, ts) = MeanStd(rs.Select(r => r.FinalTrainLoss).ToList());
            double step = rs.Average(r => r.StepSeconds);
            baseStep ??= step;
            summaries.Add(new AblationSummary(v.Name, v.Overrides, rs.Count, evals.Count > 0 ? em : null, evals.Count > 0 ? es : null,
                tm, ts, rs[0].TrainableParams, rs[0].TotalParams, step, baseStep > 0 ? step / baseStep.Value - 1 : null, rs[0].TrainableStateMiB,
                AggregateEval(rs)));
        }
        return new AblationReport(Path.GetFullPath(configPath), overrides, seeds, summaries, runs, complete);
    }

    /// <summary>Mean ± sample std per evaluation metric over the runs that report it (null when no run was evaluated).</summary>
    private static SortedDictionary<string, AblationMetric>? AggregateEval(IReadOnlyList<AblationRun> runs)
    {
        var evaluated = runs.Where(r => r.Eval is not null).ToList();
        if (evaluated.Count == 0) return null;
        var result = new SortedDictionary<string, AblationMetric>(StringComparer.Ordinal);
        foreach (var key in evaluated.SelectMany(r => r.Eval!.Keys).Distinct())
        {
            var xs = evaluated.Where(r => r.Eval!.ContainsKey(key)).Select(r => r.Eval![key]).ToList();
            var (m, s) = MeanStd(xs);
            result[key] = new AblationMetric(m, s, xs.Count);
        }
        return result;
    }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    public static void Write(string outDir, AblationReport report)
    {
        AtomicFile.WriteAllText(Path.Combine(outDir, JsonFile), JsonSerializer.Serialize(report, Json));
        Html(report).WriteHtml(Path.Combine(outDir, HtmlFile));
    }

    private static string F(double? x, string format = "F4") => x is { } v && !double.IsNaN(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "–";

    private static Report Html(AblationReport r)
    {
        var report = new Report("Ablation");
        var head = report.Section("Setup")
            .Paragraph($"Config {r.Config}; overrides: {(r.Overrides.Count == 0 ? "none" : string.Join(" ", r.Overrides))}; seeds {string.Join(", ", r.Seeds)}.")
            .Paragraph("Mean ± sample standard deviation over seeds. Step time is the mean wall-clock time of an optimizer step after the first; " +
                       "its overhead is relative to the first variant listed. Trainable state = trainable parameters × 16 bytes (weights, gradients, AdamW moments).");
        if (!r.Complete) head.Paragraph("Incomplete: the ablation is still running or was interrupted; the runs so far are shown.");
        report.Section("Variants").Table(
            ["variant", "runs", "held-out loss", "final train loss", "trainable params", "total params", "step (s)", "step overhead", "trainable state (MiB)", "overrides"],
            r.Variants.Select(v => (IReadOnlyList<string>)[
                v.Variant, v.Runs.ToString(CultureInfo.InvariantCulture),
                v.EvalLossMean is null ? "–" : $"{F(v.EvalLossMean)} ± {F(v.EvalLossStd)}",
                $"{F(v.FinalTrainLossMean)} ± {F(v.FinalTrainLossStd)}",
                v.TrainableParams.ToString("N0", CultureInfo.InvariantCulture), v.TotalParams.ToString("N0", CultureInfo.InvariantCulture),
                F(v.StepSecondsMean, "F3"), v.StepTimeOverhead is { } o ? (100 * o).ToString("+0.0;-0.0", CultureInfo.InvariantCulture) + " %" : "–",
                F(v.TrainableStateMiB, "F2"), v.Overrides.Count == 0 ? "–" : string.Join(" ", v.Overrides)]));
        var withEval = r.Variants.Where(v => v.EvalLossMean.HasValue).ToList();
        if (withEval.Count > 0)
            report.Section("Held-out loss").Bar(new BarChart("Held-out loss (mean ± std)", "loss", withEval.Select(v => v.Variant).ToList(),
                [("held-out loss", withEval.Select(v => new Bar(v.EvalLossMean!.Value, v.EvalLossMean - v.EvalLossStd, v.EvalLossMean + v.EvalLossStd)).ToList())]).Validate());
        var metricNames = r.Variants.Where(v => v.Eval is not null).SelectMany(v => v.Eval!.Keys).Distinct().OrderBy(k => k, StringComparer.Ordinal).ToList();
        if (metricNames.Count > 0)
        {
            var evalSection = report.Section("Evaluation")
                .Paragraph("Every run evaluated on the same held-out sets (eval.heldout, greedy, eval.limit examples each spread evenly): " +
                           "<set>.exact = trimmed exact match, em/f1 = SQuAD's, <set>.<level>.* per complexity level, level.* pooled over the sets; " +
                           "ifeval.* = IFEval accuracies (--ifeval); temperature.mae = mean |τ − τ*| of the temperature head. Mean ± sample std over seeds.");
            evalSection.Table(["metric", .. r.Variants.Select(v => v.Variant)],
                metricNames.Select(k => (IReadOnlyList<string>)[k, .. r.Variants.Select(v =>
                    v.Eval is not null && v.Eval.TryGetValue(k, out var m) ? $"{F(m.Mean)} ± {F(m.Std)}" : "–")]));
            var headline = metricNames.Where(k => k.EndsWith(".exact", StringComparison.Ordinal) && k.Count(c => c == '.') == 1 || k == "ifeval.prompt_strict").ToList();
            if (headline.Count > 0)
                evalSection.Bar(new BarChart("Held-out evaluation (mean ± std)", "score", headline,
                    r.Variants.Where(v => v.Eval is not null).Select(v => (v.Variant, (IReadOnlyList<Bar>)headline.Select(k => v.Eval!.TryGetValue(k, out var m)
                        ? new Bar(m.Mean, m.Mean - m.Std, m.Mean + m.Std) : new Bar(0)).ToList())).ToList()).Validate());
        }
        report.Section("Runs").Table(["variant", "seed", "steps", "held-out loss", "final train loss", "step (s)", "run folder"],
            r.Runs.Select(x => (IReadOnlyList<string>)[x.Variant, x.Seed.ToString(CultureInfo.InvariantCulture), x.Steps.ToString(CultureInfo.InvariantCulture),
                F(x.EvalLoss), F(x.FinalTrainLoss), F(x.StepSeconds, "F3"), x.RunDir]));
        return report;
    }
}
