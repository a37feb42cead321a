// Causal mean over the selected rows of a run (the instruction context of the instruction-aware model variants):
//   y[t] = (Σ_{j ≤ t, j in t's run, select[j]} x[j]) / count[t],  count[t] = #{such j};  y[t] = 0 when count[t] = 0
// A run restarts at rows with restart[t] = 1 (the first token of a row or of a packed document). x, y (N, D);
// count (N) is the cache backward takes. The running sum is kept in float32 and added in row order, so a KV-cached
// decoder that carries (sum, count) across steps gets bit-identical results (the state overload).
using System.Numerics.Tensors;

namespace InstructTune.Engine.Kernels;

public static class SegmentMeanKernel
{
    /// <summary>Forward from an empty state (training: whole rows at once).</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, Span<int> count, ReadOnlySpan<byte> select,
        ReadOnlySpan<byte> restart, int N, int D)
    {
        var sum = new float[D];
        int c = 0;
        Forward(x, y, count, select, restart, N, D, sum, ref c);
    }

    /// <summary>Forward continuing a carried state: <paramref name="sum"/> (D) and <paramref name="running"/> are
    /// the run's selected-row sum and count before row 0, and hold them after row N−1. y must not alias x.</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, Span<int> count, ReadOnlySpan<byte> select,
        ReadOnlySpan<byte> restart, int N, int D, Span<float> sum, ref int running)
    {
        KernelChecks.Len("SegmentMean.Forward", "x", x.Length, (long)N * D);
        KernelChecks.Len("SegmentMean.Forward", "y", y.Length, (long)N * D);
        KernelChecks.Len("SegmentMean.Forward", "count", count.Length, N);
        KernelChecks.Len("SegmentMean.Forward", "select", select.Length, N);
        KernelChecks.Len("SegmentMean.Forward", "restart", restart.Length, N);
        KernelChecks.Len("SegmentMean.Forward", "sum", sum.Length, D);
        for (int t = 0; t < N; t++)
        {
            if (restart[t] != 0) { sum.Clear(); running = 0; }
            if (select[t] != 0) { TensorPrimitives.Add(sum, x.Slice(t * D, D), sum); running++; }
            count[t] = running;
            var yt = y.Slice(t * D, D);
            if (running == 0) yt.Clear();
            else TensorPrimitives.Divide(sum, (float)running, yt);
        }
    }

    /// <summary>dx[j] += select[j] · Σ_{t ≥ j in j's run} dy[t] / count[t]  (differentiates y[t] = sum[t] / count[t]),
    /// one reverse scan.</summary>
    public static void Backward(ReadOnlySpan<float> dy, Span<float> dx, ReadOnlySpan<int> count, ReadOnlySpan<byte> select,
        ReadOnlySpan<byte> restart, int N, int D)
    {
        KernelChecks.Len("SegmentMean.Backward", "dy", dy.Length, (long)N * D);
        KernelChecks.Len("SegmentMean.Backward", "dx", dx.Length, (long)N * D);
        var acc = new float[D];
        for (int t = N - 1; t >= 0; t--)
        {
            if (count[t] > 0) TensorPrimitives.MultiplyAdd(dy.Slice(t * D, D), 1f / count[t], acc, acc);
            if (select[t] != 0) TensorPrimitives.Add(dx.Slice(t * D, D), acc, dx.Slice(t * D, D));
            if (restart[t] != 0) Array.Clear(acc);
        }
    }

    /// <summary>The definition in double precision, O(N²·D): the test oracle.</summary>
    public static void ForwardNaive(ReadOnlySpan<float> x, Span<float> y, ReadOnlySpan<byte> select, ReadOnlySpan<byte> restart, int N, int D)
    {
        for (int t = 0; t < N; t++)
        {
            int start = t;
            while (start > 0 && restart[start] == 0) start--;
            var acc = new double[D];
            int c = 0;
            for (int j = start; j <= t; j++)
            {
                if (select[j] == 0) continue;
                c++;
                for (int d = 0; d < D; d++) acc[d] += x[j * D + d];
            }
            for (int d = 0; d < D; d++) y[t * D + d] = c == 0 ? 0f : (float)(acc[d] / c);
        }
    }
}
