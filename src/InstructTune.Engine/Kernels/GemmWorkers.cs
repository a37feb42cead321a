// A tiny persistent thread team for the kernels: parts 1..n-1 of a job run on parked worker threads while the
// caller runs part 0. No allocation per call (Parallel.For allocates closures and state every time), and a
// parked worker wakes in microseconds because the events spin briefly before blocking.
namespace InstructTune.Engine.Kernels;

internal static unsafe class GemmWorkers
{
    private static readonly object Gate = new();
    private static Thread[] threads = [];
    private static ManualResetEventSlim[] wake = [];
    private static readonly CountdownEvent Done = new(1);
    private static delegate*<int, int, void> work;
    private static int parts;
    private static Exception? failure;

    /// <summary>
    /// Runs fn(part, n) for part = 0..n-1 across the caller and n-1 workers, and returns when all finished.
    /// Returns false without running anything when the team is busy (a concurrent or nested call):
    /// the caller then runs the work itself on one thread. fn reads its inputs from statics the caller
    /// set while holding <see cref="Gate"/>; see <see cref="TryEnter"/>.
    /// </summary>
    public static void Run(delegate*<int, int, void> fn, int n)
    {
        EnsureWorkers(n - 1);
        work = fn; parts = n; failure = null;
        Done.Reset(n - 1);
        for (int w = 0; w < n - 1; w++) wake[w].Set();
        try { fn(0, n); }
        finally { Done.Wait(); }
        if (failure != null) throw new AggregateException("GEMM worker failed", failure);
    }

    /// <summary>Claims the team for one job; false when another thread holds it (run serially then).</summary>
    public static bool TryEnter() => Monitor.TryEnter(Gate);

    public static void Exit() => Monitor.Exit(Gate);

    private static void EnsureWorkers(int count)
    {
        if (threads.Length >= count) return;
        var t = new Thread[count];
        var e = new ManualResetEventSlim[count];
        Array.Copy(threads, t, threads.Length);
        Array.Copy(wake, e, wake.Length);
        for (int w = threads.Length; w < count; w++)
        {
            e[w] = new ManualResetEventSlim(false, spinCount: 2000);
            int index = w;
            t[w] = new Thread(() => Loop(index)) { IsBackground = true, Name = $"gemm-worker-{index + 1}" };
        }
        wake = e;
        for (int w = threads.Length; w < count; w++) t[w].Start();
        threads = t;
    }

    private static void Loop(int index)
    {
        var ev = wake[index];
        while (true)
        {
            ev.Wait();
            ev.Reset();
            try { work(index + 1, parts); }
            catch (Exception ex) { failure = ex; }
            finally { Done.Signal(); }
        }
    }
}
