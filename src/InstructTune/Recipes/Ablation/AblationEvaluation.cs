// What `itune ablate` measures on every trained variant × seed besides the held-out loss, on the same sets for all:
//   - each `eval.heldout` set of the config through `itune eval run`'s recipe (EvalRunRecipe: batched greedy generation
//     with the run's prompt format and segments, ExampleMetrics per example) -> "<set>.exact", "<set>.f1", … and per
//     complexity level "<set>.<level>.exact"; the levels pooled over all sets -> "level.<level>.exact";
//   - an IFEval input file (`--ifeval FILE`) through IFEvalGeneration + the IFEval checker -> "ifeval.prompt_strict", …;
//   - with a temperature head and model.instruction_aware.temperature_targets, the head's prediction on every held-out
//     prompt whose task has a target -> "temperature.mae" (mean |τ − τ*|).
// Every run's evaluation goes to its run folder (eval/<set>/, eval/ifeval/); the numbers come back flat, keyed as above.
using System.Globalization;
using System.Text.Json.Nodes;
using InstructTune.Evaluation;
using InstructTune.Evaluation.IFEval;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Evaluation.Run;
using InstructTune.Training.Config;

namespace InstructTune.Recipes.Ablation;

/// <summary>The evaluation settings of an ablation (the held-out sets themselves come from the config's eval.heldout).</summary>
public sealed record AblationEvalOptions
{
    /// <summary>Examples per held-out set and IFEval prompts, spread evenly (seeded): bound as eval.limit; null = the config's.</summary>
    public int? Limit { get; init; }
    /// <summary>IFEval input JSONL (google-research's input_data.jsonl layout); null = no IFEval section.</summary>
    public string? IfevalPath { get; init; }
    /// <summary>false: held-out loss only (no generation).</summary>
    public bool Enabled { get; init; } = true;
}

public static class AblationEvaluation
{
    /// <summary>The per-example metrics of a held-out set that the ablation report keeps (when the set has them).</summary>
    public static readonly string[] SetMetrics = ["exact", "em", "f1", "rougeL", "fidelity", "gsm8k", "gsm8k_strict", "gsm8k_flexible"];
    /// <summary>The metrics kept per complexity level.</summary>
    public static readonly string[] LevelMetrics = ["exact", "f1"];

    /// <summary>True when the ablation generates anything (a held-out set or an IFEval file).</summary>
    public static bool Active(TrainConfig config, AblationEvalOptions o) => o.Enabled && (config.Eval.Heldout.Count > 0 || o.IfevalPath is not null);

    /// <summary>Refuses, before the first run trains, what would fail only after it: a missing held-out set, an
    /// unreadable IFEval file, a negative limit.</summary>
    public static void Check(TrainConfig config, AblationEvalOptions o)
    {
        if (!Active(config, o)) return;
        if (o.Limit is < 0) throw new Common.InputException($"--eval-limit {o.Limit}: must be ≥ 0");
        foreach (var set in config.Eval.Heldout)
            if (!File.Exists(set) && !Directory.Exists(set)) throw new ConfigException($"eval.heldout: {set} not found", "eval.heldout");
        if (o.IfevalPath is { } p)
        {
            if (!File.Exists(p)) throw new Common.InputException($"--ifeval: {p} not found");
            IFEvalReader.ReadPrompts(p);   // refuses a malformed file naming its line
            IFEvalServices.Load();         // the checker's Punkt and langdetect data, before any run trains
        }
    }

    /// <summary>Evaluates the run <paramref name="config"/> trained (its checkpoint.output_dir) and returns the flat metrics.</summary>
    public static SortedDictionary<string, double> Evaluate(TrainConfig config, AblationEvalOptions o, Action<string>? log = null, CancellationToken cancel = default)
    {
        var metrics = new SortedDictionary<string, double>(StringComparer.Ordinal);
        if (!Active(config, o)) return metrics;
        var evalRoot = Path.Combine(config.Checkpoint.OutputDir, "eval");
        // --eval-limit reaches the config as eval.limit (AblationRecipe binds it), so the requests carry it.
        var requests = config.Eval.Heldout.Count > 0
            ? EvalRunRecipe.FromConfig(config, log: null).Select(r => r with { OutDir = Path.Combine(evalRoot, Path.GetFileName(r.OutDir)) }).ToList()
            : [];
        var pooled = new Dictionary<string, List<JsonObject>>(StringComparer.Ordinal);
        foreach (var request in requests)
        {
            cancel.ThrowIfCancellationRequested();
            var set = Path.GetFileName(request.OutDir);
            var outcome = EvalRunRecipe.Run(request, null, cancel);
            AddSet(metrics, set, outcome.Results);
            foreach (var line in File.ReadLines(Path.Combine(request.OutDir, EvalRunRecipe.PredictionsFile)).Where(l => l.Length > 0))
            {
                var node = JsonNode.Parse(line)!.AsObject();
                var level = node["level"]?.GetValue<string>() ?? "";
                if (!pooled.TryGetValue(level, out var list)) pooled[level] = list = [];
                list.Add(node);
            }
            log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"  eval {set}: {outcome.Examples} examples, exact {Get(metrics, $"{set}.exact")}, f1 {Get(metrics, $"{set}.f1")}"));
        }
        foreach (var (level, lines) in pooled)
            foreach (var m in LevelMetrics)
                if (Mean(lines, m) is { } v) metrics[$"level.{level}.{m}"] = v;

        var (model, adapter) = ModelOf(config);
        if (o.IfevalPath is { } ifeval)
        {
            cancel.ThrowIfCancellationRequested();
            var dir = Path.Combine(evalRoot, "ifeval");
            var settings = new EvalGenerationSettings { MaxNewTokens = config.Eval.MaxNewTokens, BatchSize = config.Eval.BatchSize, Seed = config.Training.Seed };
            var template = config.Eval.Template.Length > 0 ? config.Eval.Template : null;
            var (input, responses) = IFEvalGeneration.Generate(ifeval, model, adapter, template, settings, config.Eval.Limit, config.Training.Seed, dir);
            var result = IFEvalRun.Run(input, responses, IFEvalServices.Load(), dir);
            metrics["ifeval.prompt_strict"] = result.Summary.Strict.PromptLevel;
            metrics["ifeval.instruction_strict"] = result.Summary.Strict.InstructionLevel;
            metrics["ifeval.prompt_loose"] = result.Summary.Loose.PromptLevel;
            metrics["ifeval.instruction_loose"] = result.Summary.Loose.InstructionLevel;
            log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                $"  eval ifeval: {result.Strict.Length} prompts, prompt-level strict {result.Summary.Strict.PromptLevel:0.000}"));
        }
        if (config.Model.InstructionAware.TemperatureTargets is { Count: > 0 } targets && requests.Count > 0)
            if (TemperatureError(model, adapter, requests, targets, config.Eval.Template) is { } mae)
            {
                metrics["temperature.mae"] = mae;
                log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"  eval temperature head: mean |τ − τ*| {mae:0.0000}"));
            }
        return metrics;
    }

    /// <summary>The model and adapter the run left, as <see cref="EvalRunRecipe.FromConfig"/> picks them.</summary>
    private static (string Model, string? Adapter) ModelOf(TrainConfig c)
    {
        string final = Path.Combine(c.Checkpoint.OutputDir, "final"), exported = Path.Combine(c.Checkpoint.OutputDir, "adapter");
        var model = Directory.Exists(final) ? final : c.Model.Path;
        return (model, model != final && Directory.Exists(exported) ? exported : null);
    }

    /// <summary>Mean |τ − τ*| of the temperature head over the evaluated held-out prompts whose task has a target (null:
    /// the model has no head, or no such prompt).</summary>
    private static double? TemperatureError(string modelDir, string? adapter, IReadOnlyList<EvalRunRequest> requests,
        IReadOnlyDictionary<string, double> targets, string template)
    {
        using var loaded = LoadedModel.Load(modelDir, adapter);
        if (!loaded.Model.HasTemperatureHead) return null;
        var formatter = loaded.PromptFormat(template.Length > 0 ? template : null);
        var generator = new InferenceTextGenerator(loaded.Model, loaded.Tokenizer, formatter, new EvalGenerationSettings { MaxNewTokens = 1 });
        double sum = 0;
        int n = 0;
        foreach (var r in requests)
            foreach (var e in EvalData.Sample(EvalData.Load(r.DataPath, r.Format, r.Fields, r.Dataset, r.Split).Examples, r.Limit, r.Seed))
            {
                if (!targets.TryGetValue(e.Task, out var target)) continue;
                var ids = generator.FormattedPromptIds(formatter.Format(e.Record));
                sum += Math.Abs(loaded.Model.PredictTemperature(ids, formatter.PromptSegments(e.Record, loaded.Tokenizer, ids)) - target);
                n++;
            }
        return n == 0 ? null : sum / n;
    }

    private static void AddSet(SortedDictionary<string, double> metrics, string set, JsonObject results)
    {
        if (results["metrics"] is JsonObject means)
            foreach (var m in SetMetrics)
                if (means[m] is JsonValue v && v.TryGetValue<double>(out var x)) metrics[$"{set}.{m}"] = x;
        if (results["reference_perplexity"]?["ref_ppl_corpus"] is JsonValue ppl && ppl.TryGetValue<double>(out var p)) metrics[$"{set}.ref_ppl"] = p;
        if (results["by_level"] is JsonObject levels)
            foreach (var (level, node) in levels)
                foreach (var m in LevelMetrics)
                    if (node?[m] is JsonValue v && v.TryGetValue<double>(out var x)) metrics[$"{set}.{level}.{m}"] = x;
    }

    private static double? Mean(IReadOnlyList<JsonObject> lines, string metric)
    {
        double sum = 0;
        int n = 0;
        foreach (var l in lines)
            if (l["metrics"]?[metric] is JsonValue v && v.TryGetValue<double>(out var x)) { sum += x; n++; }
        return n == 0 ? null : sum / n;
    }

    private static string Get(IReadOnlyDictionary<string, double> m, string key) =>
        m.TryGetValue(key, out var v) ? v.ToString("0.000", CultureInfo.InvariantCulture) : "–";
}
