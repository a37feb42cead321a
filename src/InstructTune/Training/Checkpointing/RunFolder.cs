using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using InstructTune.Data.Cache;
using InstructTune.Training.Config;

namespace InstructTune.Training.Checkpointing;

/// <summary>What identifies a run: written to run.json when it starts and checked when it is resumed.</summary>
public sealed record RunInfo(
    [property: JsonPropertyName("config_sha256")] string ConfigHash,
    [property: JsonPropertyName("base_model")] string BaseModel,
    [property: JsonPropertyName("data")] string Data,
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("started_at")] string StartedAt,
    [property: JsonPropertyName("pid")] int Pid,
    [property: JsonPropertyName("resumed_at")] IReadOnlyList<string>? ResumedAt = null);

/// <summary>How a run may use a folder that already holds one: refuse (default), continue it (--resume), or replace it (--overwrite).</summary>
public sealed record RunStartOptions(bool Overwrite = false, bool ResumeForce = false);

/// <summary>
/// A run's output folder (checkpoint.output_dir), held for the life of the run: an exclusive lock file
/// (run.lock: pid, host, time; created with CreateNew so two processes cannot both take it) released on
/// dispose; a lock whose process is gone is stale and is taken over, with a note. A new run in a folder that
/// already holds a run (run.json, checkpoints or metrics.jsonl) is refused unless it resumes it or overwrites it
/// (overwrite deletes the old run's checkpoints, metrics, exports and run.json, and keeps the data cache). A resume
/// compares the recorded base model, data and method with this run's and refuses a difference unless forced.
/// </summary>
public sealed class RunFolder : IDisposable
{
    public const string LockFile = "run.lock";
    public const string InfoFile = "run.json";

    // Folders locked by this process: a second run of the same process on the same folder is concurrent too.
    private static readonly HashSet<string> HeldHere = new(StringComparer.Ordinal);

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly string _lockPath;
    private FileStream? _lock;

    public string Dir { get; }

    private RunFolder(string dir, FileStream lockStream)
    {
        Dir = dir; _lock = lockStream; _lockPath = Path.Combine(dir, LockFile);
    }

    /// <summary>Takes the folder for a run: lock, then refuse or clear an earlier run. <paramref name="say"/> gets notes.</summary>
    public static RunFolder Acquire(string dir, bool resume, RunStartOptions options, Action<string>? say = null)
    {
        Directory.CreateDirectory(dir);
        var full = Path.GetFullPath(dir);
        var folder = new RunFolder(dir, TakeLock(dir, full, say));
        try
        {
            if (!resume && HoldsRun(dir))
            {
                if (!options.Overwrite)
                    throw new ConfigException(
                        $"checkpoint.output_dir: {dir} already holds a run ({Evidence(dir)}); resume it (--resume latest), replace it (--overwrite) or choose another folder",
                        "checkpoint.output_dir");
                ClearRun(dir);
                say?.Invoke($"overwrite: removed the earlier run in {dir}");
            }
            return folder;
        }
        catch { folder.Dispose(); throw; }
    }

    private static FileStream TakeLock(string dir, string full, Action<string>? say)
    {
        var path = Path.Combine(dir, LockFile);
        lock (HeldHere)
        {
            if (HeldHere.Contains(full))
                throw new ConfigException($"checkpoint.output_dir: {dir} is in use by another run in this process ({LockFile})", "checkpoint.output_dir");
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    var stream = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
                    var text = $"pid={Environment.ProcessId}\nhost={Environment.MachineName}\nstarted={DateTimeOffset.UtcNow:O}\n";
                    stream.Write(Encoding.UTF8.GetBytes(text));
                    stream.Flush(flushToDisk: true);
                    HeldHere.Add(full);
                    return stream;
                }
                catch (IOException) when (File.Exists(path) && attempt < 3)
                {
                    var (pid, host) = ReadLock(path);
                    bool alive = pid > 0 && host == Environment.MachineName && IsAlive(pid) && pid != Environment.ProcessId;
                    if (alive)
                        throw new ConfigException(
                            $"checkpoint.output_dir: {dir} is in use by process {pid} ({LockFile}); wait for it, or delete {path} if that process is not a run",
                            "checkpoint.output_dir");
                    if (host != Environment.MachineName && pid > 0)
                        throw new ConfigException(
                            $"checkpoint.output_dir: {dir} is locked by process {pid} on host {host} ({LockFile}); delete {path} if that run is over",
                            "checkpoint.output_dir");
                    say?.Invoke($"stale lock of process {pid} in {dir} removed");
                    File.Delete(path);
                }
            }
        }
    }

    private static (int Pid, string Host) ReadLock(string path)
    {
        int pid = 0; string host = Environment.MachineName;
        try
        {
            foreach (var line in File.ReadAllLines(path))
            {
                if (line.StartsWith("pid=", StringComparison.Ordinal)) int.TryParse(line.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out pid);
                if (line.StartsWith("host=", StringComparison.Ordinal)) host = line[5..];
            }
        }
        catch (IOException) { }
        return (pid, host);
    }

    private static bool IsAlive(int pid)
    {
        try { using var p = Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>True when the folder holds an earlier run's record, checkpoints or metrics.</summary>
    public static bool HoldsRun(string dir) => Evidence(dir).Length > 0;

    private static string Evidence(string dir)
    {
        var found = new List<string>();
        if (File.Exists(Path.Combine(dir, InfoFile))) found.Add(InfoFile);
        int checkpoints = Directory.Exists(dir) ? Directory.EnumerateDirectories(dir, "checkpoint-*").Count() : 0;
        if (checkpoints > 0) found.Add($"{checkpoints} checkpoint(s)");
        if (File.Exists(Path.Combine(dir, "metrics.jsonl"))) found.Add("metrics.jsonl");
        return string.Join(", ", found);
    }

    private static void ClearRun(string dir)
    {
        foreach (var d in Directory.EnumerateDirectories(dir, "checkpoint-*").Concat(Directory.EnumerateDirectories(dir, ".tmp-checkpoint-*")))
            Directory.Delete(d, recursive: true);
        foreach (var name in new[] { "adapter", "final", "generations" })
            if (Directory.Exists(Path.Combine(dir, name))) Directory.Delete(Path.Combine(dir, name), recursive: true);
        foreach (var f in Directory.EnumerateFiles(dir).Where(f => Path.GetFileName(f) is "metrics.jsonl" or InfoFile or "config.yaml"
                     || Path.GetFileName(f).StartsWith("events.out.tfevents", StringComparison.Ordinal)))
            File.Delete(f);
    }

    /// <summary>
    /// Records this run in run.json; on resume, first compares base model, data and method with what the folder
    /// recorded and refuses a difference (naming both) unless <paramref name="force"/>.
    /// </summary>
    public RunInfo Record(RunInfo current, bool resume, bool force, Action<string>? say = null)
    {
        var path = Path.Combine(Dir, InfoFile);
        var previous = File.Exists(path) ? Read(path) : null;
        if (resume && previous != null)
        {
            var diffs = new List<string>();
            if (previous.BaseModel != current.BaseModel) diffs.Add($"model.path: base model {Short(current.BaseModel)} differs from the run's {Short(previous.BaseModel)}");
            if (previous.Data != current.Data) diffs.Add($"data: fingerprint {Short(current.Data)} differs from the run's {Short(previous.Data)}");
            if (previous.Method != current.Method) diffs.Add($"training.method: {current.Method} differs from the run's {previous.Method}");
            if (diffs.Count > 0)
            {
                if (!force)
                    throw new ConfigException($"refusing to resume the run in {Dir}: {string.Join("; ", diffs)} (resume-force continues anyway)");
                say?.Invoke($"warning: resuming despite: {string.Join("; ", diffs)}");
            }
            var resumed = (previous.ResumedAt ?? []).Append(current.StartedAt).ToList();
            current = previous with { ResumedAt = resumed, ConfigHash = current.ConfigHash, BaseModel = current.BaseModel, Data = current.Data, Method = current.Method };
        }
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(current, Json));
        return current;
    }

    public static RunInfo? Read(string path)
    {
        try { return JsonSerializer.Deserialize<RunInfo>(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a run record ({e.Message})"); }
    }

    private static string Short(string fingerprint) => fingerprint.Length > 24 ? fingerprint[..24] + "…" : fingerprint;

    /// <summary>sha256 of config.json plus the size of every weight file: changes when the base model does, without reading gigabytes.</summary>
    public static string ModelFingerprint(string modelDir)
    {
        if (string.IsNullOrEmpty(modelDir) || !File.Exists(Path.Combine(modelDir, "config.json"))) return "in-memory";
        var sb = new StringBuilder("config.json:").Append(CacheManifest.Sha256OfFile(Path.Combine(modelDir, "config.json")));
        foreach (var f in Directory.EnumerateFiles(modelDir).Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".bin", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            sb.Append(';').Append(Path.GetFileName(f)).Append('=').Append(new FileInfo(f).Length.ToString(CultureInfo.InvariantCulture));
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    public void Dispose()
    {
        if (_lock == null) return;
        _lock.Dispose();
        _lock = null;
        try { File.Delete(_lockPath); } catch (IOException) { }
        lock (HeldHere) HeldHere.Remove(Path.GetFullPath(Dir));
    }
}
