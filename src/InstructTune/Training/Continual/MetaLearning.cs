using System.Globalization;
using System.Text.Json;
using InstructTune.Data.Batching;
using InstructTune.Data.Records;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Reports;
using InstructTune.Training.Config;
using InstructTune.Training.Losses;
using InstructTune.Training.Loop;

namespace InstructTune.Training.Continual;

/// <summary>
/// Meta-learning an initialisation over a family of instruction tasks (meta.algorithm; tasks = the records' task labels).
/// Every optimizer step of the run is one meta-iteration; for each of meta.tasks_per_step tasks τ (a seeded pick):
/// <code>
///   θ₀ = θ;  for i in 1..k:  θ ← θ − α·∇L_τ(θ; support batch i)          k = meta.inner_steps, α = meta.inner_learning_rate
///   Reptile (Nichol et al. 2018, alg. 2):  g_τ = (θ₀ − θ) / (α·k)        = the mean of the k inner gradients
///   FO-MAML (Finn et al. 2017, §5.2):     g_τ = ∇L_τ(θ; query batch)      at the adapted weights
///   θ ← θ₀
/// </code>
/// and the mean of the g_τ is the step's gradient: the trainer then adds regularizers, clips, and lets AdamW at
/// training.learning_rate take the outer step (Reptile's paper: "(θ − W) can be treated as a gradient and plugged into
/// Adam"). Scaling Reptile's difference by 1/(α·k) keeps its size that of a gradient, so max_grad_norm and the step guard
/// mean what they mean elsewhere. The tasks and examples of step s are a pure function of (training.seed, s), so a resumed
/// run (it reloads the trainer's checkpoint) continues bit for bit. Reptile with k = 1 is plain multi-task SGD on the same
/// batches, the baseline the fast-adaptation comparison is measured against in docs/CONTINUAL.md.
/// </summary>
public sealed class MetaLearner : IStepObjective
{
    private readonly IReadOnlyList<Parameter> _parameters;
    private readonly IReadOnlyList<IReadOnlyList<TokenizedExample>> _tasks;
    private readonly MetaSection _o;
    private readonly InnerLoop _inner;
    private readonly int _seed;
    private readonly Func<int> _step;

    /// <param name="tasks">Each meta-training task's examples (those with learned tokens).</param>
    /// <param name="step">The 0-based optimizer step being taken (the trainer's counter).</param>
    public MetaLearner(IReadOnlyList<Parameter> parameters, IReadOnlyList<IReadOnlyList<TokenizedExample>> tasks, MetaSection options,
        InnerLoop inner, int seed, Func<int> step)
    {
        _parameters = parameters; _tasks = tasks; _o = options; _inner = inner; _seed = seed; _step = step;
    }

    public StepOutcome ForwardBackward(LlamaModel model, IReadOnlyList<Batch> microBatches, bool checkpointLayers)
    {
        int s = _step(), k = _o.InnerSteps, n = _o.TasksPerStep;
        float alpha = (float)_o.InnerLearningRate;
        var start = Snapshot(_parameters);
        var meta = _parameters.Select(p => new float[p.Length]).ToArray();
        double before = 0, after = 0; int tokens = 0;
        for (int j = 0; j < n; j++)
        {
            var rng = new Rng((ulong)Common.StableHash.Combine(_seed, s, j, 0x4D455441));
            var pool = _tasks[(int)(rng.NextDouble() * _tasks.Count)];
            for (int i = 0; i < k; i++)
            {
                var (loss, t) = _inner.SgdStep(_inner.Draw(pool, rng), alpha);
                if (i == 0) before += loss;
                if (i == k - 1) after += loss;
                tokens += t;
            }
            if (_o.Algorithm == MetaAlgorithm.Fomaml)
            {
                var (query, t) = _inner.Gradient(_inner.Draw(pool, rng));     // ∇L_τ at the adapted weights, left in p.Grad
                after += query;
                tokens += t;
                for (int q = 0; q < _parameters.Count; q++)
                    System.Numerics.Tensors.TensorPrimitives.Add(meta[q], _parameters[q].Grad!.Span, meta[q]);
            }
            else
                for (int q = 0; q < _parameters.Count; q++)
                {
                    // g_τ += (θ₀ − θ) / (α·k)
                    var theta = _parameters[q].Span; var m = meta[q]; var th0 = start[q];
                    for (int e = 0; e < m.Length; e++) m[e] += (th0[e] - theta[e]) / (alpha * k);
                }
            Restore(_parameters, start);
        }
        for (int q = 0; q < _parameters.Count; q++)
        {
            var g = _parameters[q].EnsureGrad().Span;
            System.Numerics.Tensors.TensorPrimitives.Multiply(meta[q], 1f / n, g);
        }
        // The step's loss: the tasks' loss at the meta weights (first inner batch), comparable to a plain run's training loss.
        return new StepOutcome(before / n, tokens, new Dictionary<string, double> { ["meta_adapted_loss"] = after / n });
    }

    public static float[][] Snapshot(IReadOnlyList<Parameter> parameters) => parameters.Select(p => p.Span.ToArray()).ToArray();

    public static void Restore(IReadOnlyList<Parameter> parameters, float[][] values)
    {
        for (int q = 0; q < parameters.Count; q++) parameters[q].Load(values[q]);
    }
}

/// <summary>
/// Plain SGD on one task's batches, shared by meta-training's inner loop and the fast-adaptation comparison: draw
/// training.micro_batch_size examples (with replacement, from a seeded stream), the mean response-token loss, its gradient,
/// θ ← θ − α·g. The objective is the run's instruction loss without uncertainty weights or NEFTune noise.
/// </summary>
public sealed class InnerLoop(LlamaModel model, IReadOnlyList<Parameter> parameters, int batchSize, int maxSeqLen, int padId,
    ObjectiveOptions objective, int taskCount, bool checkpointLayers)
{
    private readonly ObjectiveOptions _plain = objective with { UncertaintyLogVars = null, NeftuneAlpha = 0, NoiseRng = null };

    public List<Batch> Draw(IReadOnlyList<TokenizedExample> pool, Rng rng)
    {
        var chosen = Enumerable.Range(0, batchSize).Select(_ => pool[(int)(rng.NextDouble() * pool.Count)]).ToList();
        var sampler = new DataSampler(chosen, new BatchOptions(BatchMode.Bucketed, chosen.Count, maxSeqLen), padId, 0);
        return Enumerable.Range(0, sampler.BatchesPerEpoch).Select(_ => sampler.Next()).ToList();
    }

    /// <summary>Leaves ∇L(θ; batches) in every parameter's gradient; returns the loss and the tokens seen.</summary>
    public (double Loss, int Tokens) Gradient(IReadOnlyList<Batch> batches)
    {
        var counts = InstructionObjective.Count(batches, _plain, taskCount);
        foreach (var p in parameters) p.ZeroGrad();
        double loss = 0; int tokens = 0;
        for (int i = 0; i < batches.Count; i++)
        {
            using var tape = Tape.Record();
            var r = InstructionObjective.Forward(model, batches[i], counts, _plain, firstMicroBatch: i == 0, checkpointLayers);
            tape.Backward(r.Loss);
            loss += r.Loss.Item();
            tokens += batches[i].RealTokens;
        }
        return (loss, tokens);
    }

    /// <summary>One SGD step θ ← θ − α·∇L(θ; batches); gradients are left zeroed.</summary>
    public (double Loss, int Tokens) SgdStep(IReadOnlyList<Batch> batches, float alpha)
    {
        var result = Gradient(batches);
        foreach (var p in parameters)
        {
            if (p.Grad is not { } g) continue;
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(g.Span, -alpha, p.Span, p.Span);
            p.ZeroGrad();
        }
        return result;
    }
}

/// <summary>
/// The fast-adaptation comparison (meta.adapt_tasks, meta.adapt_steps, meta.target_loss): for each held-out task,
/// K SGD steps (meta.inner_learning_rate, the same seeded batches for both starts) from the meta-learned weights and from
/// the run's starting weights; the task's held-out loss and token accuracy after every step; steps to the target loss
/// (default: where the starting weights are after K steps) and their ratio. Written to run_dir/meta.json + meta.html.
/// </summary>
public static class FastAdaptation
{
    public const string JsonFile = "meta.json", HtmlFile = "meta.html";

    /// <param name="StepsToTarget">First step whose held-out loss ≤ the target (0 = already at the start); null: not within K.</param>
    public sealed record Curve(IReadOnlyList<double> Loss, IReadOnlyList<double> TokenAccuracy, int? StepsToTarget);

    /// <param name="StepRatio">Meta start's steps to target ÷ the plain start's (null when either never reaches it).</param>
    public sealed record TaskResult(string Task, int TrainExamples, int HeldOutExamples, double TargetLoss, Curve Meta, Curve Plain, double? StepRatio);

    public static TaskResult Run(LlamaModel model, IReadOnlyList<Parameter> parameters, InnerLoop inner, float[][] metaWeights, float[][] startWeights,
        string task, IReadOnlyList<TokenizedExample> train, IReadOnlyList<TokenizedExample> heldOut, MetaSection o, int batchSize, int maxSeqLen,
        int padId, int seed)
    {
        (List<double> Loss, List<double> Acc) Adapt(float[][] from)
        {
            MetaLearner.Restore(parameters, from);
            var rng = new Rng((ulong)Common.StableHash.Combine(seed, 0x414450, task));
            var loss = new List<double>(); var acc = new List<double>();
            for (int t = 0; ; t++)
            {
                var s = HeldOutEvaluator.Score(model, heldOut, batchSize, maxSeqLen, padId);
                loss.Add(s.Loss); acc.Add(s.TokenAccuracy);
                if (t == o.AdaptSteps) break;
                inner.SgdStep(inner.Draw(train, rng), (float)o.InnerLearningRate);
            }
            return (loss, acc);
        }
        var plain = Adapt(startWeights);
        var meta = Adapt(metaWeights);
        MetaLearner.Restore(parameters, metaWeights);
        double target = o.TargetLoss > 0 ? o.TargetLoss : plain.Loss[^1];
        int? Steps(List<double> l) { int i = l.FindIndex(v => v <= target); return i < 0 ? null : i; }
        int? sm = Steps(meta.Loss), sp = Steps(plain.Loss);
        double? ratio = sm is { } a && sp is { } b ? (b == 0 ? (a == 0 ? 1 : null) : (double)a / b) : null;
        return new TaskResult(task, train.Count, heldOut.Count(e => e.LearnedTokens > 0), target,
            new Curve(meta.Loss, meta.Acc, sm), new Curve(plain.Loss, plain.Acc, sp), ratio);
    }

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static void Write(string runDir, TrainConfig config, int metaSteps, IReadOnlyList<TaskResult> results)
    {
        var o = config.Meta;
        var doc = new Dictionary<string, object?>
        {
            ["algorithm"] = o.Algorithm.ToString().ToLowerInvariant(),
            ["meta_steps"] = metaSteps,
            ["inner_steps"] = o.InnerSteps,
            ["inner_learning_rate"] = o.InnerLearningRate,
            ["tasks_per_step"] = o.TasksPerStep,
            ["outer_learning_rate"] = config.Training.LearningRate,
            ["adapt_steps"] = o.AdaptSteps,
            ["target"] = o.TargetLoss > 0 ? "meta.target_loss" : "the plain start's held-out loss after adapt_steps",
            ["tasks"] = results,
            ["definitions"] = "Each held-out task is fine-tuned with SGD (meta.inner_learning_rate, training.micro_batch_size examples per step, " +
                "the same batches for both starts) from the meta-learned weights (meta) and from the run's starting weights (plain); loss[t] is the " +
                "mean response-token cross-entropy on the task's held-out examples after t steps. steps_to_target: first t with loss[t] <= target_loss; " +
                "step_ratio = meta's steps_to_target / plain's.",
        };
        Checkpoints.AtomicFile.WriteAllText(Path.Combine(runDir, JsonFile), JsonSerializer.Serialize(doc, Json));

        var report = new Report($"Fast adaptation after {o.Algorithm.ToString().ToLowerInvariant()} ({metaSteps} meta-steps)");
        report.Section("What this shows").Paragraph((string)doc["definitions"]!);
        string F(double? v) => v is { } x && double.IsFinite(x) ? x.ToString("0.000", CultureInfo.InvariantCulture) : "not reached";
        report.Section("Steps to target").Table(["task", "target loss", "meta start", "plain start", "ratio"],
            results.Select(r => (IReadOnlyList<string>)[r.Task, F(r.TargetLoss), r.Meta.StepsToTarget?.ToString() ?? "not reached",
                r.Plain.StepsToTarget?.ToString() ?? "not reached", F(r.StepRatio)]));
        foreach (var r in results)
            report.Section(r.Task).Line(new LineChart($"{r.Task}: held-out loss", "SGD step", "loss",
            [
                new Series("meta-learned start", r.Meta.Loss.Select((v, t) => ((double)t, v)).ToList()),
                new Series("plain start", r.Plain.Loss.Select((v, t) => ((double)t, v)).ToList()),
            ]));
        report.WriteHtml(Path.Combine(runDir, HtmlFile));
    }
}
