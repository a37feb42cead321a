using InstructTune.Tokenizers;

namespace InstructTune.Tests.Tokenizers;

/// <summary>The heap-based merge loop against its naive twin (rescan every adjacent pair, merge the lowest rank,
/// leftmost on ties) on random words over a small alphabet with dense merges, where ties and overlaps are common.</summary>
public class BpeMergerTests
{
    private static List<int> Naive(List<int> ids, BpeMerger m)
    {
        var s = new List<int>(ids);
        while (true)
        {
            int best = -1, bestRank = int.MaxValue, bestId = 0;
            for (int i = 0; i + 1 < s.Count; i++)
                if (m.TryGetMerge(s[i], s[i + 1], out int r, out int id) && r < bestRank) { best = i; bestRank = r; bestId = id; }
            if (best < 0) return s;
            s[best] = bestId;
            s.RemoveAt(best + 1);
        }
    }

    [Fact]
    public void HeapMergeEqualsNaiveRescan()
    {
        var rng = new Random(7);
        // Alphabet 0..3; merges of every pair of existing symbols get random ranks, including equal ranks.
        var table = new Dictionary<long, long>();
        int next = 4;
        for (int k = 0; k < 60; k++)
        {
            int a = rng.Next(next), b = rng.Next(next);
            if (table.ContainsKey(BpeMerger.Key(a, b))) continue;
            table[BpeMerger.Key(a, b)] = ((long)rng.Next(20) << 32) | (uint)next++;
        }
        var merger = new BpeMerger(table);
        for (int trial = 0; trial < 3000; trial++)
        {
            int n = rng.Next(1, 40);
            var ids = Enumerable.Range(0, n).Select(_ => rng.Next(4)).ToList();
            var ws = BpeMerger.Begin(n);
            for (int i = 0; i < n; i++) ws.Add(ids[i], i, i + 1);
            var output = new List<ModelToken>();
            merger.MergeAll(ws, output);
            Assert.Equal(Naive(ids, merger), output.Select(t => t.Id).ToList());
            Assert.Equal(0, output[0].Start);
            Assert.Equal(n, output[^1].End);
            for (int k = 1; k < output.Count; k++) Assert.Equal(output[k - 1].End, output[k].Start);
        }
    }
}
