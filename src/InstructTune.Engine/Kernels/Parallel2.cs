// Work splitting for the heavy kernels: rows or heads are cut into one contiguous chunk per core, so a
// kernel pays one task per core rather than one per row. Small problems run inline on the caller.
namespace InstructTune.Engine.Kernels;

public static class Parallel2
{
    /// <summary>Cores used by kernels (default: all; set lower to share the machine).</summary>
    public static int Threads { get; set; } = Environment.ProcessorCount;

    /// <summary>Calls body(start, end) over [0, n) split into chunks; inline when work (≈ flops) is small.</summary>
    public static void For(int n, long workPerItem, Action<int, int> body)
    {
        int chunks = Math.Min(Threads, n);
        if (chunks <= 1 || n * workPerItem < 32_768) { body(0, n); return; }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks }, c =>
        {
            int start = (int)((long)n * c / chunks), end = (int)((long)n * (c + 1) / chunks);
            if (start < end) body(start, end);
        });
    }
}
