// Work splitting for the heavy kernels: rows or heads are cut into one contiguous chunk per core, so a
// kernel pays one task per core rather than one per row. Small problems run inline on the caller.
namespace InstructTune.Engine.Kernels;

public static unsafe class Parallel2
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

    private static Action<int>? partBody;

    /// <summary>
    /// Runs body(part) for part = 0..parts-1 on the kernels' persistent worker team (the caller runs part 0).
    /// For fine-grained work such as decode GEMVs, where Parallel.For's per-call task setup and allocation cost
    /// as much as the work itself. When the team is busy (nested or concurrent call) the parts run serially.
    /// </summary>
    public static void RunParts(int parts, Action<int> body)
    {
        if (parts > 1 && GemmWorkers.TryEnter())
        {
            try { partBody = body; GemmWorkers.Run(&RunPart, parts); }
            finally { partBody = null; GemmWorkers.Exit(); }
            return;
        }
        for (int p = 0; p < parts; p++) body(p);
    }

    private static void RunPart(int part, int parts) => partBody!(part);
}
