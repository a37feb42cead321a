namespace InstructTune.Reports;

/// <summary>Writes an output file atomically (or through a special file such as /dev/null; "-" is stdout):
/// see <see cref="Common.OutputFile"/>.</summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string contents) => Common.OutputFile.WriteAllText(path, contents);
}
