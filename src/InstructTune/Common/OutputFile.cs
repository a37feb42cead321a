using Microsoft.Win32.SafeHandles;

namespace InstructTune.Common;

/// <summary>
/// The one way an output file is written (every AtomicFile of the project calls it):
/// <list type="bullet">
/// <item><c>-</c> is standard output;</item>
/// <item>a new path or a regular file is written atomically: a temp file beside it, flushed to disk, renamed over it
/// (through a symbolic link to its target, so the link stays a link) — a crash never leaves a half-written file;</item>
/// <item>anything else that exists — /dev/null, /dev/stdout, a FIFO, a terminal, any path under /dev or /proc — is
/// written through, never replaced: renaming a temp file over /dev/null as root would turn it into a regular file for
/// the whole machine;</item>
/// <item>a folder is refused, naming it.</item>
/// </list>
/// </summary>
public static class OutputFile
{
    public const string Stdout = "-";

    public static void Write(string path, Action<FileStream> write)
    {
        if (path == Stdout)
        {
            Console.Out.Flush();
            using var stdout = new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, 1 << 16);
            write(stdout);
            stdout.Flush();
            return;
        }
        var full = Path.GetFullPath(path);
        var kind = FileKind.Of(full);
        if (kind == PathKind.Directory) throw new InputException($"{path}: is a folder, expected an output file name");
        if (WritesThrough(full, kind))
        {
            using var fs = new FileStream(full, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1 << 16);
            write(fs);
            fs.Flush();
            return;
        }
        // Rename over the link's target, not over the link.
        if (kind == PathKind.RegularFile && new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true) is { } target) full = target.FullName;
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
        Write(path, fs => fs.Write(new System.Text.UTF8Encoding(false).GetBytes(text)));

    /// <summary>True for an existing path that is not a regular file, or any path under /dev or /proc.</summary>
    public static bool WritesThrough(string fullPath, PathKind kind) =>
        kind is not (PathKind.Missing or PathKind.RegularFile or PathKind.Directory)
        || fullPath.StartsWith("/dev/", StringComparison.Ordinal) || fullPath.StartsWith("/proc/", StringComparison.Ordinal);
}
