using System.IO.MemoryMappedFiles;
using InstructTune.Data.Records;

namespace InstructTune.Data.Cache;

/// <summary>
/// A tokenized dataset read back from its shards through memory maps: nothing is loaded until an example is asked
/// for, and then only that example's bytes are copied out. Implements IReadOnlyList so samplers take it directly.
/// </summary>
public sealed class CachedDataset : IReadOnlyList<TokenizedExample>, IDisposable
{
    private sealed record Shard(MemoryMappedFile File, MemoryMappedViewAccessor View, int N, long K, long[] Offsets, int First);

    private readonly List<Shard> _shards = [];

    public CachedDataset(string dir, IEnumerable<ShardInfo> shards)
    {
        int first = 0;
        foreach (var info in shards)
        {
            var path = Path.Combine(dir, info.File);
            var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            var view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            if (view.ReadUInt32(0) != ShardFormat.Magic || view.ReadInt32(4) != ShardFormat.Version)
                throw new InvalidDataException($"{path}: not an InstructTune shard (bad magic or version)");
            int n = view.ReadInt32(8);
            long k = view.ReadInt64(12);
            if (n != info.Examples || k != info.Tokens || view.Capacity < ShardFormat.TotalBytes(n, k))
                throw new InvalidDataException($"{path}: holds {n} examples / {k} tokens, the manifest says {info.Examples} / {info.Tokens}");
            var offsets = new long[n + 1];
            view.ReadArray(ShardFormat.OffsetsAt, offsets, 0, n + 1);
            _shards.Add(new Shard(file, view, n, k, offsets, first));
            first += n;
        }
        Count = first;
    }

    public int Count { get; }

    public TokenizedExample this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index));
            var s = _shards[FindShard(index)];
            int i = index - s.First;
            long start = s.Offsets[i];
            int len = (int)(s.Offsets[i + 1] - start);
            var ids = new int[len];
            var labels = new int[len];
            var segs = new byte[len];
            s.View.ReadArray(ShardFormat.IdsAt(s.N) + 4 * start, ids, 0, len);
            s.View.ReadArray(ShardFormat.LabelsAt(s.N, s.K) + 4 * start, labels, 0, len);
            s.View.ReadArray(ShardFormat.SegmentsAt(s.N, s.K) + start, segs, 0, len);
            return new TokenizedExample(ids, labels, segs, s.View.ReadInt32(ShardFormat.TaskIdsAt(s.N) + 4L * i),
                s.View.ReadInt32(ShardFormat.ComplexityAt(s.N) + 4L * i), s.View.ReadInt32(ShardFormat.TruncatedAt(s.N) + 4L * i));
        }
    }

    /// <summary>Example lengths without reading token data (for batch planning).</summary>
    public int[] Lengths()
    {
        var lengths = new int[Count];
        foreach (var s in _shards)
            for (int i = 0; i < s.N; i++) lengths[s.First + i] = (int)(s.Offsets[i + 1] - s.Offsets[i]);
        return lengths;
    }

    private int FindShard(int index)
    {
        int lo = 0, hi = _shards.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (_shards[mid].First <= index) lo = mid; else hi = mid - 1;
        }
        return lo;
    }

    public IEnumerator<TokenizedExample> GetEnumerator()
    {
        for (int i = 0; i < Count; i++) yield return this[i];
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public void Dispose()
    {
        foreach (var s in _shards) { s.View.Dispose(); s.File.Dispose(); }
        _shards.Clear();
    }
}
