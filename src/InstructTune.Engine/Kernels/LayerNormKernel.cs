// LayerNorm over the last dimension (biased variance, as torch.nn.LayerNorm):
//   mean[n] = mean(x[n]); rstd[n] = 1/sqrt(var(x[n]) + eps); y = (x − mean)·rstd ⊙ w + b
// x, y (N, C); w, b (C) (b may be empty: no bias); mean, rstd (N) are the caches backward takes.
namespace InstructTune.Engine.Kernels;

public static class LayerNormKernel
{
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y,
        Span<float> mean, Span<float> rstd, int N, int C, float eps)
    {
        KernelChecks.Len("LayerNorm.Forward", "x", x.Length, (long)N * C);
        KernelChecks.Len("LayerNorm.Forward", "y", y.Length, (long)N * C);
        KernelChecks.Len("LayerNorm.Forward", "w", w.Length, C);
        for (int n = 0; n < N; n++)
        {
            var xr = x.Slice(n * C, C);
            double m = 0;
            for (int c = 0; c < C; c++) m += xr[c];
            m /= C;
            double v = 0;
            for (int c = 0; c < C; c++) { double d = xr[c] - m; v += d * d; }
            v /= C;
            float r = (float)(1.0 / Math.Sqrt(v + eps));
            mean[n] = (float)m; rstd[n] = r;
            for (int c = 0; c < C; c++)
                y[n * C + c] = ((xr[c] - (float)m) * r) * w[c] + (b.IsEmpty ? 0f : b[c]);
        }
    }

    /// <summary>dx += rstd·(g − mean(g) − x̂·mean(g⊙x̂)) with g = dy⊙w, x̂ = (x−mean)·rstd; dw += dy⊙x̂; db += dy.</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean,
        ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dw, Span<float> db, int N, int C)
    {
        KernelChecks.Len("LayerNorm.Backward", "dy", dy.Length, (long)N * C);
        KernelChecks.Len("LayerNorm.Backward", "dx", dx.Length, (long)N * C);
        for (int n = 0; n < N; n++)
        {
            float m = mean[n], r = rstd[n];
            double sg = 0, sgx = 0;
            for (int c = 0; c < C; c++)
            {
                float xh = (x[n * C + c] - m) * r, g = dy[n * C + c] * w[c];
                sg += g; sgx += g * xh;
            }
            float mg = (float)(sg / C), mgx = (float)(sgx / C);
            for (int c = 0; c < C; c++)
            {
                float xh = (x[n * C + c] - m) * r, g = dy[n * C + c] * w[c];
                dx[n * C + c] += r * (g - mg - xh * mgx);
                if (!dw.IsEmpty) dw[c] += dy[n * C + c] * xh;
                if (!db.IsEmpty) db[c] += dy[n * C + c];
            }
        }
    }

    /// <summary>The definition in double precision (test oracle).</summary>
    public static void ForwardNaive(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> b, Span<float> y,
        Span<float> mean, Span<float> rstd, int N, int C, float eps)
    {
        for (int n = 0; n < N; n++)
        {
            double m = 0, v = 0;
            for (int c = 0; c < C; c++) m += x[n * C + c];
            m /= C;
            for (int c = 0; c < C; c++) v += (x[n * C + c] - m) * (x[n * C + c] - m);
            double r = 1.0 / Math.Sqrt(v / C + eps);
            mean[n] = (float)m; rstd[n] = (float)r;
            for (int c = 0; c < C; c++) y[n * C + c] = (float)((x[n * C + c] - m) * r * w[c] + (b.IsEmpty ? 0 : b[c]));
        }
    }

    public static void BackwardNaive(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> mean,
        ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dw, Span<float> db, int N, int C)
    {
        for (int n = 0; n < N; n++)
        {
            double sg = 0, sgx = 0;
            for (int c = 0; c < C; c++)
            {
                double xh = (x[n * C + c] - (double)mean[n]) * rstd[n];
                sg += (double)dy[n * C + c] * w[c]; sgx += (double)dy[n * C + c] * w[c] * xh;
            }
            for (int c = 0; c < C; c++)
            {
                double xh = (x[n * C + c] - (double)mean[n]) * rstd[n];
                dx[n * C + c] += (float)(rstd[n] * ((double)dy[n * C + c] * w[c] - sg / C - xh * sgx / C));
                if (!dw.IsEmpty) dw[c] += (float)(dy[n * C + c] * xh);
                if (!db.IsEmpty) db[c] += dy[n * C + c];
            }
        }
    }
}
