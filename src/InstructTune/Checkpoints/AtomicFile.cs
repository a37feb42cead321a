// Atomic file writes: write to a temp file beside the target, flush to disk, then rename over the target,
// so a crash never leaves a half-written checkpoint under the final name (special files are written through;
// see Common.OutputFile).
namespace InstructTune.Checkpoints;

public static class AtomicFile
{
    /// <summary>Writes through <paramref name="write"/> into a temp file, fsyncs it, then renames it to <paramref name="path"/>.</summary>
    public static void Write(string path, Action<FileStream> write) => Common.OutputFile.Write(path, write);

    public static void WriteAllText(string path, string text) => Common.OutputFile.WriteAllText(path, text);
}
