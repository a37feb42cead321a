using InstructTune.Data.Batching;

namespace InstructTune.Training.Loop;

/// <summary>Where the trainer draws batches from, resumably: the data pipeline's sampler, or fixed batches in tests.</summary>
public interface IBatchSource
{
    Batch Next();
    /// <summary>Moves past the next batch without building it (data parallel: another rank's share).</summary>
    void Skip() => Next();
    SamplerState State { get; }
    void Restore(SamplerState state);
}

/// <summary>The data pipeline's seeded, resumable sampler as a batch source.</summary>
public sealed class SamplerBatchSource(DataSampler sampler) : IBatchSource
{
    public Batch Next() => sampler.Next();
    public void Skip() => sampler.Skip();
    public SamplerState State => sampler.State;
    public void Restore(SamplerState state) => sampler.Restore(state);
}

/// <summary>A fixed list of batches served in order (cycling), e.g. batches a reference script also used.</summary>
public sealed class ListBatchSource(IReadOnlyList<Batch> batches) : IBatchSource
{
    private int _cursor;
    public Batch Next() => batches[_cursor++ % batches.Count];
    public void Skip() => _cursor++;
    public SamplerState State => new(0, 0, _cursor);
    public void Restore(SamplerState state) => _cursor = state.Cursor;
}
