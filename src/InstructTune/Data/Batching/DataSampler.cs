using InstructTune.Data.Records;

namespace InstructTune.Data.Batching;

/// <summary>The sampler's position, saved in a checkpoint: a resumed run continues with the very next batch.</summary>
public sealed record SamplerState(int Seed, int Epoch, int Cursor);

/// <summary>
/// Endless, seeded stream of batches over a tokenized dataset: epoch e uses <see cref="BatchPlanner.Plan"/> with
/// (seed, e); the cursor counts batches served in the current epoch. <see cref="State"/> / <see cref="Restore"/>
/// make it resumable: restoring a state gives exactly the batches an uninterrupted run would have seen next.
/// </summary>
public sealed class DataSampler
{
    private readonly IReadOnlyList<TokenizedExample> _examples;
    private readonly int[] _lengths;
    private readonly BatchOptions _options;
    private readonly int _padId;
    private List<PlannedBatch> _plan;

    public DataSampler(IReadOnlyList<TokenizedExample> examples, BatchOptions options, int padId, int seed)
    {
        if (examples.Count == 0) throw new ArgumentException("the dataset is empty");
        _examples = examples;
        // A memory-mapped dataset gives its lengths from the offsets without copying token data out.
        _lengths = examples is Cache.CachedDataset cached ? cached.Lengths() : examples.Select(e => e.Length).ToArray();
        _options = options;
        _padId = padId;
        Seed = seed;
        _plan = BatchPlanner.Plan(_lengths, options, seed, 0);
    }

    public int Seed { get; }
    public int Epoch { get; private set; }
    public int Cursor { get; private set; }
    public int BatchesPerEpoch => _plan.Count;

    public SamplerState State => new(Seed, Epoch, Cursor);

    public void Restore(SamplerState state)
    {
        if (state.Seed != Seed) throw new ArgumentException($"sampler state has seed {state.Seed}, this sampler {Seed}");
        if (state.Epoch != Epoch) _plan = BatchPlanner.Plan(_lengths, _options, Seed, state.Epoch);
        Epoch = state.Epoch;
        Cursor = state.Cursor;
    }

    public Batch Next()
    {
        var planned = Advance();
        return Collator.Collate(_examples, planned, _padId, _options.Mode == BatchMode.Packed ? _options.SeqLen : 0);
    }

    /// <summary>Moves past the next batch exactly as <see cref="Next"/> would, without collating it.</summary>
    public void Skip() => Advance();

    private PlannedBatch Advance()
    {
        if (Cursor >= _plan.Count)
        {
            Epoch++;
            Cursor = 0;
            _plan = BatchPlanner.Plan(_lengths, _options, Seed, Epoch);
        }
        return _plan[Cursor++];
    }
}
