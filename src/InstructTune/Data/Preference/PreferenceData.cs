using InstructTune.Data.Batching;
using InstructTune.Data.Records;

namespace InstructTune.Data.Preference;

/// <summary>
/// Tokenized feedback data, what a preference step consumes. Every sequence is prompt + one completion with the
/// completion's tokens labelled (−100 elsewhere, HF alignment), so a sequence's log-prob is the sum over its labels.
/// <list type="bullet">
/// <item>Paired (DPO, IPO, ORPO, SimPO, reward): item k is sequences 2k (chosen) and 2k+1 (rejected).</item>
/// <item>Unpaired (KTO): item k is sequence k with its desirable flag, and KL sequence k = prompt k followed by the
/// completion of item k−1 (cyclic), the mismatched pairs of TRL's KL estimate.</item>
/// </list>
/// A batch of items lays chosen rows first, then rejected rows (TRL's concatenated forward); each row's
/// <see cref="Batch.ExampleIndices"/> holds its sequence index.
/// </summary>
public sealed class PreferenceData
{
    private readonly List<TokenizedExample> _sequences;
    private readonly List<TokenizedExample> _kl;
    private readonly bool[] _desirable;
    private readonly double[]? _margins;

    public bool Paired { get; }
    public int PadId { get; }
    public int Count => Paired ? _sequences.Count / 2 : _sequences.Count;
    public IReadOnlyList<TokenizedExample> Sequences => _sequences;
    public IReadOnlyList<TokenizedExample> KlSequences => _kl;

    private PreferenceData(bool paired, List<TokenizedExample> sequences, List<TokenizedExample> kl, bool[] desirable, int padId, double[]? margins = null)
    {
        Paired = paired; _sequences = sequences; _kl = kl; _desirable = desirable; PadId = padId; _margins = margins;
    }

    /// <summary>Pairs; <paramref name="margins"/> (one per pair, TRL's <c>margin</c> column, 0 where a record has none) or null.</summary>
    public static PreferenceData Pairs(IReadOnlyList<(TokenizedExample Chosen, TokenizedExample Rejected)> pairs, int padId,
        IReadOnlyList<double>? margins = null)
    {
        if (margins != null && margins.Count != pairs.Count) throw new ArgumentException($"{margins.Count} margins for {pairs.Count} pairs");
        var seqs = new List<TokenizedExample>(pairs.Count * 2);
        foreach (var (c, r) in pairs) { seqs.Add(c); seqs.Add(r); }
        return new PreferenceData(true, seqs, [], [], padId, margins?.ToArray());
    }

    /// <summary>Whether the data carries per-pair margins (<see cref="Margin"/>).</summary>
    public bool HasMargins => _margins != null;

    /// <summary>Pair k's margin (0 without margins).</summary>
    public double Margin(int item) => _margins?[item] ?? 0;

    /// <summary>Unpaired examples; KL sequences are built here from prompt k and completion k−1, cut to <paramref name="maxSeqLen"/>.</summary>
    public static PreferenceData Unpaired(IReadOnlyList<(TokenizedExample Completion, bool Desirable)> items, int padId, int maxSeqLen = 0)
    {
        var seqs = items.Select(i => i.Completion).ToList();
        var kl = new List<TokenizedExample>(seqs.Count);
        for (int k = 0; k < seqs.Count; k++)
            kl.Add(Mismatched(seqs[k], seqs[(k + seqs.Count - 1) % seqs.Count], maxSeqLen));
        return new PreferenceData(false, seqs, kl, items.Select(i => i.Desirable).ToArray(), padId);
    }

    /// <summary>The prompt of <paramref name="promptOf"/> followed by the completion of <paramref name="completionOf"/>.</summary>
    public static TokenizedExample Mismatched(TokenizedExample promptOf, TokenizedExample completionOf, int maxSeqLen)
    {
        int p = CompletionStart(promptOf), c = CompletionStart(completionOf);
        int n = p + completionOf.Length - c;
        if (maxSeqLen > 0) n = Math.Min(n, maxSeqLen);
        var ids = new int[n]; var labels = new int[n]; var segs = new byte[n];
        for (int t = 0; t < n; t++)
        {
            bool fromPrompt = t < p;
            int s = fromPrompt ? t : c + t - p;
            var e = fromPrompt ? promptOf : completionOf;
            ids[t] = e.Ids[s]; labels[t] = fromPrompt ? TokenizedExample.IgnoreIndex : e.Labels[s]; segs[t] = e.Segments[s];
        }
        return new TokenizedExample(ids, labels, segs, promptOf.TaskId, promptOf.Complexity);
    }

    /// <summary>The first labelled position: where the completion starts (the sequence length when nothing is labelled).</summary>
    public static int CompletionStart(TokenizedExample e)
    {
        for (int t = 0; t < e.Length; t++) if (e.Labels[t] != TokenizedExample.IgnoreIndex) return t;
        return e.Length;
    }

    public bool Desirable(int item) => _desirable[item];

    /// <summary>Item k of a sequence index; for pairs whether it is the chosen sequence.</summary>
    public int ItemOf(int sequence) => Paired ? sequence / 2 : sequence;
    public bool IsChosen(int sequence) => Paired ? sequence % 2 == 0 : _desirable[sequence];

    /// <summary>The items' sequences as one right-padded batch: chosen rows first, then rejected rows (pairs).</summary>
    public Batch Collate(IReadOnlyList<int> items)
    {
        var rows = Paired
            ? items.Select(k => new[] { 2 * k }).Concat(items.Select(k => new[] { 2 * k + 1 })).ToArray()
            : items.Select(k => new[] { k }).ToArray();
        return Collator.Collate(_sequences, new PlannedBatch(rows), PadId);
    }

    /// <summary>The KL sequences of the items (unpaired data), one row each.</summary>
    public Batch CollateKl(IReadOnlyList<int> items) =>
        Collator.Collate(_kl, new PlannedBatch(items.Select(k => new[] { k }).ToArray()), PadId);

    /// <summary>The items a batch made by <see cref="Collate"/> holds, in order.</summary>
    public int[] ItemsOf(Batch b)
    {
        int n = Paired ? b.B / 2 : b.B;
        var items = new int[n];
        for (int r = 0; r < n; r++) items[r] = ItemOf(b.ExampleIndices[r][0]);
        return items;
    }

    /// <summary>A subset (train/validation split) with KL pairs rebuilt inside it.</summary>
    public PreferenceData Subset(IReadOnlyList<int> items, int maxSeqLen = 0) => Paired
        ? Pairs(items.Select(k => (_sequences[2 * k], _sequences[2 * k + 1])).ToList(), PadId, _margins == null ? null : items.Select(k => _margins[k]).ToList())
        : Unpaired(items.Select(k => (_sequences[k], _desirable[k])).ToList(), PadId, maxSeqLen);
}

/// <summary>Seeded, resumable draws of items: each epoch a fresh permutation, cut into batches of <c>itemsPerBatch</c>.</summary>
public sealed class PreferenceSampler(PreferenceData data, int itemsPerBatch, int seed) : Training.Loop.IBatchSource
{
    private int _epoch, _cursor;
    private int[] _order = Permutation(data.Count, seed, 0);

    public int BatchesPerEpoch => (data.Count + itemsPerBatch - 1) / itemsPerBatch;

    public Batch Next()
    {
        if (_cursor >= BatchesPerEpoch) { _epoch++; _cursor = 0; _order = Permutation(data.Count, seed, _epoch); }
        int start = _cursor++ * itemsPerBatch;
        return data.Collate(_order[start..Math.Min(data.Count, start + itemsPerBatch)]);
    }

    public SamplerState State => new(seed, _epoch, _cursor);

    public void Restore(SamplerState state)
    {
        _epoch = state.Epoch; _cursor = state.Cursor;
        _order = Permutation(data.Count, seed, _epoch);
    }

    private static int[] Permutation(int n, int seed, int epoch)
    {
        var order = Enumerable.Range(0, n).ToArray();
        var rng = new Engine.Tensors.Rng((ulong)seed * 1_000_003UL + (ulong)epoch + 1);
        for (int i = n - 1; i > 0; i--) { int j = (int)(rng.NextDouble() * (i + 1)); (order[i], order[j]) = (order[j], order[i]); }
        return order;
    }
}
