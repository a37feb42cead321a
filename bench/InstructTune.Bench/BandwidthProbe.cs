// The machine's read bandwidth at this moment: both cores sum a buffer far larger than the caches, the way the
// decode GEMV streams weights (32-byte loads, software prefetch one page ahead). Decode of a float32 model is
// bound by this figure, and on this shared host it moves between about 26 and 50 GB/s from minute to minute, so
// the decode bench measures it beside each decode run: tokens/s alone cannot say whether a slow run was the
// kernel or the machine.
using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using InstructTune.Engine.Kernels;

namespace InstructTune.Bench;

public static unsafe class BandwidthProbe
{
    private const long BufferBytes = 256L << 20;

    /// <summary>Best of <paramref name="passes"/> full reads of a 256 MiB buffer over the kernels' worker team, in GB/s.</summary>
    public static double MeasureGBs(int passes = 5)
    {
        var buffer = GC.AllocateUninitializedArray<float>((int)(BufferBytes / sizeof(float)), pinned: true);
        Array.Fill(buffer, 1f); // touch every page before timing
        double best = 0;
        fixed (float* p = buffer)
        {
            nint basePtr = (nint)p;
            long n = buffer.Length;
            int parts = Math.Max(1, Parallel2.Threads);
            var sums = new float[parts];
            for (int pass = 0; pass < passes; pass++)
            {
                var sw = Stopwatch.StartNew();
                Parallel2.RunParts(parts, part =>
                {
                    long lo = n * part / parts / 32 * 32, hi = n * (part + 1) / parts / 32 * 32;
                    sums[part] = SumRange((float*)basePtr + lo, hi - lo);
                });
                best = Math.Max(best, BufferBytes / sw.Elapsed.TotalSeconds / 1e9);
            }
            if (float.IsNaN(sums.Sum())) throw new InvalidOperationException("unreachable: keeps the sums live");
        }
        return best;
    }

    private static float SumRange(float* p, long n)
    {
        if (!Avx.IsSupported)
        {
            float s = 0;
            for (long i = 0; i < n; i++) s += p[i];
            return s;
        }
        Vector256<float> a = default, b = default, c = default, d = default;
        for (long i = 0; i + 32 <= n; i += 32)
        {
            Sse.Prefetch1(p + i + 1024);
            a += Vector256.Load(p + i); b += Vector256.Load(p + i + 8);
            c += Vector256.Load(p + i + 16); d += Vector256.Load(p + i + 24);
        }
        return Vector256.Sum(a + b + c + d);
    }
}
