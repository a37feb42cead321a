namespace InstructTune.Common;

/// <summary>How much of the files mapped from a folder is resident in this process (Linux /proc/self/smaps): the
/// weights as a checkpoint actually holds them in memory. 0 where smaps is absent.</summary>
public static class MappedMemory
{
    public static long ResidentBytes(string dir)
    {
        if (!File.Exists("/proc/self/smaps")) return 0;
        long total = 0;
        bool inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            if (line.Length > 0 && char.IsAsciiHexDigit(line[0]) && line.Contains('-') && !line.EndsWith(':'))
                inside = line.Contains(dir);
            else if (inside && line.StartsWith("Rss:"))
                total += long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        return total;
    }
}
