using InstructTune.Data.Batching;
using InstructTune.Data.Records;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Training.Config;
using InstructTune.Training.Losses;
using InstructTune.Training.Loop;

namespace InstructTune.Training.Continual;

/// <summary>
/// GEM / A-GEM's episodic memory (continual.gem, continual.memory_per_stage, continual.memory_batch): at each stage's end
/// <c>memory_per_stage</c> examples of its training data (a seeded pick) join the memory as one task. At every later step,
/// after the micro-batches' backward, the reference gradient(s) are computed at the current weights — A-GEM: one, on
/// <c>memory_batch</c> examples drawn from the whole memory; GEM: one per earlier task, on <c>memory_batch</c> of its
/// examples — and the step's gradient is projected (<see cref="GradientProjection"/>) before regularizers, clipping and the
/// optimizer. The examples of step s are a pure function of (seed, s, task), so a resumed run draws the same ones.
/// </summary>
public sealed class EpisodicMemory(LlamaModel model, GemMode mode, int batchSize, int padId, int maxSeqLen, ObjectiveOptions objective,
    int taskCount, int seed) : IGradientProjection
{
    private readonly List<IReadOnlyList<TokenizedExample>> _tasks = [];
    private readonly ObjectiveOptions _plain = objective with { UncertaintyLogVars = null, NeftuneAlpha = 0, NoiseRng = null };
    /// <summary>Steps whose gradient was changed by the projection (logged as a share).</summary>
    public int Projected { get; private set; }
    public int Tasks => _tasks.Count;

    /// <summary>Adds one finished stage's examples: <paramref name="count"/> of them in a seeded order (all when fewer).</summary>
    public void AddTask(IReadOnlyList<TokenizedExample> examples, int count, int stage)
    {
        var learned = examples.Where(e => e.LearnedTokens > 0).ToList();
        var rng = new Rng((ulong)Common.StableHash.Combine(seed, stage, 0x47454D));
        var order = Enumerable.Range(0, learned.Count).ToArray();
        for (int i = order.Length - 1; i > 0; i--) { int j = (int)(rng.NextDouble() * (i + 1)); (order[i], order[j]) = (order[j], order[i]); }
        _tasks.Add(order.Take(Math.Min(count, learned.Count)).Select(i => learned[i]).ToList());
    }

    public void Project(IReadOnlyList<Parameter> parameters, int step)
    {
        if (_tasks.Count == 0) return;
        var g = Flatten(parameters);
        var references = new List<float[]>();
        if (mode == GemMode.Agem)
            references.Add(ReferenceGradient(parameters, _tasks.SelectMany(t => t).ToList(), step, 0));
        else
            for (int k = 0; k < _tasks.Count; k++) references.Add(ReferenceGradient(parameters, _tasks[k], step, k + 1));
        bool changed = mode == GemMode.Agem ? GradientProjection.AGem(g, references[0]) : GradientProjection.Gem(g, references).Any(v => v > 0);
        if (changed) Projected++;
        int offset = 0;
        foreach (var p in parameters)
        {
            g.AsSpan(offset, p.Length).CopyTo(p.EnsureGrad().Span);
            offset += p.Length;
        }
    }

    /// <summary>The mean response-token loss gradient of <c>memory_batch</c> examples of <paramref name="pool"/> (drawn for this step).</summary>
    private float[] ReferenceGradient(IReadOnlyList<Parameter> parameters, IReadOnlyList<TokenizedExample> pool, int step, int task)
    {
        var rng = new Rng((ulong)Common.StableHash.Combine(seed, step, task));
        var chosen = Enumerable.Range(0, Math.Min(batchSize, pool.Count)).Select(_ => pool[(int)(rng.NextDouble() * pool.Count)]).ToList();
        var sampler = new DataSampler(chosen, new BatchOptions(BatchMode.Bucketed, chosen.Count, maxSeqLen), padId, 0);
        var batches = Enumerable.Range(0, sampler.BatchesPerEpoch).Select(_ => sampler.Next()).ToList();
        var counts = InstructionObjective.Count(batches, _plain, taskCount);
        foreach (var p in parameters) p.ZeroGrad();
        foreach (var b in batches)
        {
            using var tape = Tape.Record();
            tape.Backward(InstructionObjective.Forward(model, b, counts, _plain, firstMicroBatch: true).Loss);
        }
        var r = Flatten(parameters);
        foreach (var p in parameters) p.ZeroGrad();
        return r;
    }

    private static float[] Flatten(IReadOnlyList<Parameter> parameters)
    {
        var flat = new float[parameters.Sum(p => p.Length)];
        int offset = 0;
        foreach (var p in parameters)
        {
            if (p.Grad is { } grad) grad.Span.CopyTo(flat.AsSpan(offset, p.Length));
            offset += p.Length;
        }
        return flat;
    }
}
