// Atomic file writes: write to a temp file beside the target, flush to disk, then rename over the target,
// so a crash never leaves a half-written checkpoint under the final name.
namespace InstructTune.Checkpoints;

public static class AtomicFile
{
    /// <summary>Writes through <paramref name="write"/> into a temp file, fsyncs it, then renames it to <paramref name="path"/>.</summary>
    public static void Write(string path, Action<FileStream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, fs => { var b = new System.Text.UTF8Encoding(false).GetBytes(text); fs.Write(b); });
}
