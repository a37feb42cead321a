using System.Runtime.InteropServices;
using System.Security.Cryptography;
using InstructTune.Data.Records;

namespace InstructTune.Data.Cache;

/// <summary>What the manifest records of one shard.</summary>
public sealed record ShardInfo(string File, int Examples, long Tokens, string Sha256);

/// <summary>
/// Streams tokenized examples into shards of at most <c>maxTokensPerShard</c> tokens, so memory stays bounded by
/// one shard whatever the dataset size. Each shard is written to a temporary file, flushed to disk and renamed,
/// so a crash never leaves a half-written shard under its final name.
/// </summary>
public sealed class ShardWriter(string dir, long maxTokensPerShard = 1 << 22)
{
    private readonly List<TokenizedExample> _pending = [];
    private long _pendingTokens;

    public List<ShardInfo> Shards { get; } = [];

    public void Add(TokenizedExample e)
    {
        if (_pending.Count > 0 && _pendingTokens + e.Length > maxTokensPerShard) Flush();
        _pending.Add(e);
        _pendingTokens += e.Length;
    }

    /// <summary>Writes what is pending as one shard (no-op when empty).</summary>
    public void Flush()
    {
        if (_pending.Count == 0) return;
        var name = $"shard-{Shards.Count:D5}.bin";
        var path = Path.Combine(dir, name);
        var temp = path + ".tmp";
        int n = _pending.Count;
        long k = _pendingTokens;
        using (var fs = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        using (var w = new BinaryWriter(fs))
        {
            w.Write(ShardFormat.Magic); w.Write(ShardFormat.Version); w.Write(n); w.Write(k);
            long off = 0;
            w.Write(off);
            foreach (var e in _pending) w.Write(off += e.Length);
            foreach (var e in _pending) w.Write(e.TaskId);
            foreach (var e in _pending) w.Write(e.Complexity);
            foreach (var e in _pending) w.Write(e.TruncatedTokens);
            foreach (var e in _pending) w.Write(MemoryMarshal.AsBytes(e.Ids.AsSpan()));
            foreach (var e in _pending) w.Write(MemoryMarshal.AsBytes(e.Labels.AsSpan()));
            foreach (var e in _pending) w.Write(e.Segments);
            w.Flush();
            fs.Flush(flushToDisk: true);
        }
        string sha;
        using (var fs = File.OpenRead(temp)) sha = Convert.ToHexStringLower(SHA256.HashData(fs));
        File.Move(temp, path, overwrite: true);
        Shards.Add(new ShardInfo(name, n, k, sha));
        _pending.Clear();
        _pendingTokens = 0;
    }
}
