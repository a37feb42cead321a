namespace InstructTune.Data.Batching;

/// <summary>How examples are grouped into batches.</summary>
public enum BatchMode { Plain, Bucketed, TokenBudget, Packed }

/// <summary>
/// Batching settings. Plain: shuffled, <see cref="BatchSize"/> rows padded to the longest. Bucketed: shuffled, then
/// sorted by length inside windows of <see cref="BucketWindow"/> batches, so a batch holds similar lengths.
/// TokenBudget: like bucketed, but a batch takes examples while rows × longest ≤ <see cref="TokenBudget"/> (more
/// short rows, fewer long ones). Packed: rows of exactly <see cref="SeqLen"/> slots holding several examples,
/// <see cref="BatchSize"/> rows per batch.
/// </summary>
public sealed record BatchOptions(BatchMode Mode = BatchMode.Bucketed, int BatchSize = 8, int SeqLen = 2048,
    int TokenBudget = 16384, int BucketWindow = 50, bool DropLast = false);

/// <summary>A planned batch: per row, the example indices it holds (one per row unless packed).</summary>
public sealed record PlannedBatch(int[][] Rows);

/// <summary>
/// Deterministic batch plans: the same lengths, options, seed and epoch give the same batches in the same order.
/// </summary>
public static class BatchPlanner
{
    public static List<PlannedBatch> Plan(IReadOnlyList<int> lengths, BatchOptions o, int seed, int epoch)
    {
        var rng = new Random(InstructTune.Common.StableHash.Combine(seed, epoch, 0x5eed));
        var order = Enumerable.Range(0, lengths.Count).ToArray();
        rng.Shuffle(order);
        var batches = new List<PlannedBatch>();
        switch (o.Mode)
        {
            case BatchMode.Plain:
                for (int i = 0; i < order.Length; i += o.BatchSize)
                    batches.Add(new PlannedBatch(order[i..Math.Min(order.Length, i + o.BatchSize)].Select(x => new[] { x }).ToArray()));
                break;
            case BatchMode.Bucketed:
            case BatchMode.TokenBudget:
                int window = Math.Max(1, o.BatchSize * o.BucketWindow);
                for (int w = 0; w < order.Length; w += window)
                {
                    var chunk = order[w..Math.Min(order.Length, w + window)];
                    var keys = chunk.Select(i => lengths[i]).ToArray();
                    Array.Sort(keys, chunk);
                    if (o.Mode == BatchMode.Bucketed)
                        for (int i = 0; i < chunk.Length; i += o.BatchSize)
                            batches.Add(new PlannedBatch(chunk[i..Math.Min(chunk.Length, i + o.BatchSize)].Select(x => new[] { x }).ToArray()));
                    else
                        batches.AddRange(ByBudget(chunk, lengths, o.TokenBudget));
                }
                rng.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(batches));
                break;
            case BatchMode.Packed:
                var rows = Packer.Pack(lengths, order, o.SeqLen);
                var rowArray = rows.Select(r => r.ToArray()).ToArray();
                rng.Shuffle(rowArray);
                for (int i = 0; i < rowArray.Length; i += o.BatchSize)
                    batches.Add(new PlannedBatch(rowArray[i..Math.Min(rowArray.Length, i + o.BatchSize)]));
                break;
        }
        if (o.DropLast && batches.Count > 0 && o.Mode is BatchMode.Plain or BatchMode.Packed && batches[^1].Rows.Length < o.BatchSize)
            batches.RemoveAt(batches.Count - 1);
        return batches;
    }

    /// <summary>Sorted-by-length examples grouped so that rows × longest stays within the budget.</summary>
    private static IEnumerable<PlannedBatch> ByBudget(int[] sorted, IReadOnlyList<int> lengths, int budget)
    {
        var current = new List<int[]>();
        int longest = 0;
        foreach (var i in sorted)
        {
            int newLongest = Math.Max(longest, lengths[i]);
            if (current.Count > 0 && newLongest * (current.Count + 1) > budget)
            {
                yield return new PlannedBatch(current.ToArray());
                current.Clear();
                newLongest = lengths[i];
            }
            current.Add([i]);
            longest = newLongest;
        }
        if (current.Count > 0) yield return new PlannedBatch(current.ToArray());
    }

    /// <summary>Share of padded slots a plan would have (rows padded to their batch's longest; packed rows to SeqLen).</summary>
    public static double PaddingShare(IReadOnlyList<int> lengths, IReadOnlyList<PlannedBatch> plan, BatchOptions o)
    {
        long real = 0, slots = 0;
        foreach (var b in plan)
        {
            int width = o.Mode == BatchMode.Packed ? o.SeqLen : b.Rows.Max(r => r.Sum(i => lengths[i]));
            foreach (var r in b.Rows) real += r.Sum(i => lengths[i]);
            slots += (long)width * b.Rows.Length;
        }
        return slots == 0 ? 0 : 1.0 - (double)real / slots;
    }
}
