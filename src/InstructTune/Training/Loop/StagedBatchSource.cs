using InstructTune.Data.Batching;

namespace InstructTune.Training.Loop;

/// <summary>
/// Curriculum stages in order (recipe keys <c>data.datasets[].stage</c>, <c>data.stages</c>): stage k serves
/// <c>batches[k]</c> batches from its own sampler, then the next stage starts; after the last stage its sampler keeps
/// going. The state is the number of batches served (Cursor), so a resume recomputes the stage, its sampler's epoch and
/// cursor, and continues with the very next batch.
/// </summary>
public sealed class StagedBatchSource : IBatchSource
{
    private readonly IReadOnlyList<DataSampler> _stages;
    private readonly IReadOnlyList<long> _batches;
    private readonly int _seed;
    private long _served;

    /// <param name="batches">Batches of each stage (the last stage's count only decides when it starts).</param>
    public StagedBatchSource(IReadOnlyList<DataSampler> stages, IReadOnlyList<long> batches, int seed)
    {
        if (stages.Count == 0 || stages.Count != batches.Count) throw new ArgumentException("one batch count per stage is needed");
        _stages = stages;
        _batches = batches;
        _seed = seed;
    }

    /// <summary>The stage (0-based) the next batch comes from.</summary>
    public int CurrentStage => Locate(_served).Stage;

    public Batch Next()
    {
        var (stage, _) = Locate(_served);
        _served++;
        return _stages[stage].Next();
    }

    public SamplerState State => new(_seed, 0, checked((int)_served));

    public void Restore(SamplerState state)
    {
        if (state.Seed != _seed) throw new ArgumentException($"sampler state has seed {state.Seed}, this run {_seed}");
        _served = state.Cursor;
        var (stage, within) = Locate(_served);
        for (int k = 0; k < _stages.Count; k++)
        {
            long done = k < stage ? _batches[k] : k == stage ? within : 0;
            int perEpoch = _stages[k].BatchesPerEpoch;
            _stages[k].Restore(new SamplerState(_stages[k].Seed, (int)(done / perEpoch), (int)(done % perEpoch)));
        }
    }

    private (int Stage, long Within) Locate(long served)
    {
        for (int k = 0; k < _stages.Count - 1; k++)
        {
            if (served < _batches[k]) return (k, served);
            served -= _batches[k];
        }
        return (_stages.Count - 1, served);
    }
}
