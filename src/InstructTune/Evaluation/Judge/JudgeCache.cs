using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace InstructTune.Evaluation.Judge;

/// <summary>One cached judge answer.</summary>
public sealed record CachedJudgement(string Key, string Kind, string Judge, string Raw);

/// <summary>
/// Persistent JSONL cache of successful judge answers, keyed by SHA-256 of (judge name, kind, system, user), so a
/// re-run pays only for what is new or previously failed. Each entry is appended and flushed to disk as soon as it
/// is made (an append-only log cannot be temp-and-renamed per entry); a torn last line from a crash is skipped
/// on load. Failures are never cached. Keys hash the prompt, so no prompt text or credential needs to be stored
/// beyond the judge's raw answer.
/// </summary>
public sealed class JudgeCache
{
    private readonly string? path;
    private readonly Dictionary<string, CachedJudgement> entries = new(StringComparer.Ordinal);
    private readonly object gate = new();

    public JudgeCache(string? path)
    {
        this.path = path;
        if (path is null || !File.Exists(path)) return;
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                var e = JsonSerializer.Deserialize<CachedJudgement>(line);
                if (e?.Key is not null && e.Raw is not null) entries[e.Key] = e;
            }
            catch (JsonException) { /* a torn line from an interrupted run: ignore */ }
        }
    }

    public int Count { get { lock (gate) return entries.Count; } }

    public static string KeyOf(string judge, string kind, string system, string user) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{judge}\u0000{kind}\u0000{system}\u0000{user}")));

    public bool TryGet(string key, out CachedJudgement entry)
    {
        lock (gate) return entries.TryGetValue(key, out entry!);
    }

    public void Add(CachedJudgement entry)
    {
        lock (gate)
        {
            entries[entry.Key] = entry;
            if (path is null) return;
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
            var bytes = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(entry) + "\n");
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
    }
}
