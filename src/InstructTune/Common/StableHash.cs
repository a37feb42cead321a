namespace InstructTune.Common;

/// <summary>
/// Seeds derived from several values that are the same in every process. HashCode.Combine and
/// string.GetHashCode are randomised per process in .NET, so a seed built with them would make a resumed
/// run (a new process) draw different batches than the run it continues.
/// </summary>
public static class StableHash
{
    public static int Combine(params long[] values)
    {
        ulong h = 0x9E3779B97F4A7C15UL;
        foreach (var v in values) h = Mix(h ^ (ulong)v);
        return (int)(h & 0x7FFFFFFF);
    }

    public static int Combine(long a, long b, string s) => Combine(a, b, Fnv1a(s));

    /// <summary>FNV-1a over the UTF-16 code units: stable, unlike string.GetHashCode.</summary>
    public static long Fnv1a(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in s) { h ^= c; h *= 1099511628211UL; }
        return (long)h;
    }

    // SplitMix64's finaliser: every input bit affects every output bit.
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
