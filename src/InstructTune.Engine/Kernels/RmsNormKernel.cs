// RMSNorm over the last dimension, in float32 as Hugging Face's LlamaRMSNorm:
//   rstd[n] = 1 / sqrt(mean(x[n]²) + eps);  y[n] = w ⊙ (x[n] · rstd[n])
// x, y (N, C); w (C); rstd (N) is the cache backward takes. y may alias x.
using System.Buffers;
using System.Numerics.Tensors;

namespace InstructTune.Engine.Kernels;

public static unsafe class RmsNormKernel
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> rstd, int N, int C, float eps)
    {
        Check("RmsNorm.Forward", x.Length, w.Length, y.Length, rstd.Length, N, C);
        fixed (float* px = x, pw = w, py = y, pr = rstd)
        {
            float* X = px, W = pw, Y = py, R = pr;
            Parallel2.For(N, 4L * C, (s, e) =>
            {
                var wr = new ReadOnlySpan<float>(W, C);
                for (int n = s; n < e; n++)
                {
                    var xr = new ReadOnlySpan<float>(X + (long)n * C, C);
                    var yr = new Span<float>(Y + (long)n * C, C);
                    float r = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xr) / C + eps);
                    R[n] = r;
                    TensorPrimitives.Multiply(xr, r, yr);
                    TensorPrimitives.Multiply(yr, wr, yr);
                }
            });
        }
    }

    /// <summary>
    /// dx += rstd·(w⊙dy − x·rstd²·mean(w⊙dy⊙x)),  dw += Σ_n dy⊙x·rstd  (differentiates y = w ⊙ (x · rstd)).
    /// Rows run in parallel; each chunk sums its own dw partial, added at the end in chunk order.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dw, int N, int C)
    {
        Check("RmsNorm.Backward", x.Length, w.Length, dy.Length, rstd.Length, N, C);
        KernelChecks.Len("RmsNorm.Backward", "dx", dx.Length, (long)N * C);
        KernelChecks.Len("RmsNorm.Backward", "dw", dw.Length, C);
        int chunks = Math.Max(1, Math.Min(Parallel2.Threads, N));
        var partial = ArrayPool<float>.Shared.Rent(chunks * C + chunks * C);
        Array.Clear(partial, 0, chunks * C);
        fixed (float* pdy = dy, px = x, pw = w, pr = rstd, pdx = dx, ppart = partial)
        {
            float* DY = pdy, X = px, W = pw, R = pr, DX = pdx, P = ppart;
            Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = chunks }, c =>
            {
                int s = (int)((long)N * c / chunks), e = (int)((long)N * (c + 1) / chunks);
                var wr = new ReadOnlySpan<float>(W, C);
                var dwc = new Span<float>(P + (long)c * C, C);
                var tmp = new Span<float>(P + (long)chunks * C + (long)c * C, C);
                for (int n = s; n < e; n++)
                {
                    var xr = new ReadOnlySpan<float>(X + (long)n * C, C);
                    var dyr = new ReadOnlySpan<float>(DY + (long)n * C, C);
                    var dxr = new Span<float>(DX + (long)n * C, C);
                    float r = R[n];
                    // tmp = dy ⊙ x  → dw partial += tmp·r ; dot = Σ (dy ⊙ x) ⊙ w
                    TensorPrimitives.Multiply(dyr, xr, tmp);
                    float dot = TensorPrimitives.Dot(tmp, wr);
                    TensorPrimitives.MultiplyAdd(tmp, r, dwc, dwc);
                    // dx += r·(dy⊙w) − x·(r³·dot/C)
                    TensorPrimitives.Multiply(dyr, wr, tmp);
                    TensorPrimitives.MultiplyAdd(tmp, r, dxr, dxr);
                    TensorPrimitives.MultiplyAdd(xr, -r * r * r * dot / C, dxr, dxr);
                }
            });
        }
        for (int c = 0; c < chunks; c++) TensorPrimitives.Add(dw, partial.AsSpan(c * C, C), dw);
        ArrayPool<float>.Shared.Return(partial);
    }

    public static void ForwardNaive(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> rstd, int N, int C, float eps)
    {
        for (int n = 0; n < N; n++)
        {
            double ss = 0;
            for (int c = 0; c < C; c++) ss += (double)x[n * C + c] * x[n * C + c];
            double r = 1.0 / Math.Sqrt(ss / C + eps);
            rstd[n] = (float)r;
            for (int c = 0; c < C; c++) y[n * C + c] = (float)(w[c] * (x[n * C + c] * r));
        }
    }

    public static void BackwardNaive(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd,
        Span<float> dx, Span<float> dw, int N, int C)
    {
        for (int n = 0; n < N; n++)
        {
            double r = rstd[n], dot = 0;
            for (int c = 0; c < C; c++) dot += (double)dy[n * C + c] * w[c] * x[n * C + c];
            for (int c = 0; c < C; c++)
            {
                dx[n * C + c] += (float)(r * dy[n * C + c] * w[c] - x[n * C + c] * r * r * r * dot / C);
                dw[c] += (float)(dy[n * C + c] * x[n * C + c] * r);
            }
        }
    }

    private static void Check(string k, int xLen, int wLen, int yLen, int rLen, int N, int C)
    {
        KernelChecks.Len(k, "x", xLen, (long)N * C);
        KernelChecks.Len(k, "w", wLen, C);
        KernelChecks.Len(k, "y", yLen, (long)N * C);
        KernelChecks.Len(k, "rstd", rLen, N);
    }
}
