using System.Globalization;

namespace InstructTune.Training.Checkpointing;

/// <summary>
/// Checkpoint folders under a run directory: `checkpoint-000120/`, written atomically — everything goes into a
/// hidden temp folder whose files are fsynced, then one rename publishes it — so a process killed at any moment
/// leaves either the previous set of checkpoints or the new one, never a half-written folder that looks valid.
/// A `COMPLETE` marker written last inside the temp folder guards against file systems that reorder renames.
/// Keeps the newest K. `latest` is resolved by scanning, not by a pointer file that could go stale.
/// </summary>
public sealed class CheckpointStore(string runDir, int keepLast = 3)
{
    private const string Prefix = "checkpoint-";
    private const string Marker = "COMPLETE";

    public string RunDir { get; } = runDir;

    /// <summary>Writes a checkpoint for <paramref name="step"/>; <paramref name="write"/> fills the given folder.</summary>
    public string Save(long step, Action<string> write)
    {
        Directory.CreateDirectory(RunDir);
        var final = Path.Combine(RunDir, Prefix + step.ToString("D6", CultureInfo.InvariantCulture));
        var temp = Path.Combine(RunDir, $".tmp-{Prefix}{step}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            write(temp);
            File.WriteAllText(Path.Combine(temp, Marker), step.ToString(CultureInfo.InvariantCulture));
            foreach (var file in Directory.EnumerateFiles(temp, "*", SearchOption.AllDirectories)) Fsync(file);
            if (Directory.Exists(final))
            {
                // Re-saving the same step (e.g. after resume): move the old one aside first, delete after.
                var old = final + ".old-" + Guid.NewGuid().ToString("N");
                Directory.Move(final, old);
                Directory.Move(temp, final);
                Directory.Delete(old, recursive: true);
            }
            else Directory.Move(temp, final);
        }
        catch (IOException e)
        {
            // A full disk or a failing device: the half-written folder goes, the last complete checkpoint stays.
            TryDelete(temp);
            throw new IOException($"{RunDir}: writing the checkpoint of step {step} failed ({e.Message}); " +
                                  $"the last complete checkpoint is {(List() is { Count: > 0 } l ? l[^1].Path : "none")}", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        Prune(step);
        return final;
    }

    /// <summary>Complete checkpoints, oldest first.</summary>
    public IReadOnlyList<(long Step, string Path)> List()
    {
        if (!Directory.Exists(RunDir)) return [];
        var result = new List<(long, string)>();
        foreach (var dir in Directory.EnumerateDirectories(RunDir, Prefix + "*"))
        {
            var name = Path.GetFileName(dir);
            if (long.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var step)
                && File.Exists(Path.Combine(dir, Marker)))
                result.Add((step, dir));
        }
        return result.OrderBy(r => r.Item1).ToList();
    }

    /// <summary>The newest complete checkpoint, or null.</summary>
    public string? Latest() => List() is { Count: > 0 } all ? all[^1].Path : null;

    /// <summary>Resolves `latest`, a checkpoint folder, or a run folder (its latest checkpoint).</summary>
    public static string Resolve(string resumeArg, string runDir)
    {
        if (resumeArg == "latest")
            return new CheckpointStore(runDir).Latest()
                ?? throw new FileNotFoundException($"--resume latest: no complete checkpoint under {runDir}");
        if (File.Exists(Path.Combine(resumeArg, Marker))) return resumeArg;
        return new CheckpointStore(resumeArg).Latest()
            ?? throw new FileNotFoundException($"--resume {resumeArg}: not a complete checkpoint or a run folder with one");
    }

    /// <summary>
    /// Keeps the newest <c>keepLast</c> checkpoints up to <paramref name="saved"/>, the one just written. Checkpoints
    /// with a higher step belong to a trajectory this run replaced (it resumed from an earlier step): they go, so
    /// pruning by step number never deletes the new checkpoint and `latest` never resolves to the abandoned one.
    /// </summary>
    private void Prune(long saved)
    {
        var all = List();
        foreach (var (step, path) in all) if (step > saved) TryDelete(path);
        var kept = all.Where(c => c.Step <= saved).ToList();
        for (int i = 0; i < kept.Count - keepLast; i++) TryDelete(kept[i].Path);
        // Temp folders left by killed processes are garbage: nothing references them.
        foreach (var dir in Directory.EnumerateDirectories(RunDir, ".tmp-" + Prefix + "*"))
            if (!dir.Contains($"-{Environment.ProcessId}-")) TryDelete(dir);
    }

    private static void Fsync(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        stream.Flush(flushToDisk: true);
    }

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
