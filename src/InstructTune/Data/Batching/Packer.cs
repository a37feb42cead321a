namespace InstructTune.Data.Batching;

/// <summary>
/// Bin-packs example lengths into rows of at most <c>seqLen</c> tokens, best-fit decreasing: longest first, each
/// into the open row whose free space is the smallest that still fits. Free space is indexed by amount
/// (an array of row lists), so one placement costs at most seqLen steps, not one per open row.
/// </summary>
public static class Packer
{
    /// <returns>Rows, each the example indices it holds (longest first within the row).</returns>
    public static List<List<int>> Pack(IReadOnlyList<int> lengths, IReadOnlyList<int> candidates, int seqLen)
    {
        var order = candidates.ToArray();
        // Stable sort by length descending (ties keep the caller's, i.e. seeded, order).
        var keys = order.Select(i => -lengths[i]).ToArray();
        Array.Sort(keys, order);
        var rows = new List<List<int>>();
        var byFree = new List<int>?[seqLen + 1];   // free space → open rows with exactly that much room
        foreach (var i in order)
        {
            int len = lengths[i];
            if (len > seqLen) throw new ArgumentException($"example {i} has {len} tokens, more than the packed length {seqLen}; truncate first");
            int row = -1;
            for (int free = len; free <= seqLen; free++)
            {
                var list = byFree[free];
                if (list is { Count: > 0 }) { row = list[^1]; list.RemoveAt(list.Count - 1); TakeFrom(row, free - len); break; }
            }
            if (row < 0) { rows.Add([i]); TakeFrom(rows.Count - 1, seqLen - len); continue; }
            rows[row].Add(i);

            void TakeFrom(int r, int remaining) => (byFree[remaining] ??= []).Add(r);
        }
        return rows;
    }
}
