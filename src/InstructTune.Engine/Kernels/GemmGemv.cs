// Matrix-vector path for decode: Y[M,N] = alpha·X[M,K]·Wᵀ + beta·Y with M = 1..4 and W stored N×K (fp32 or
// bf16). With so few rows there is nothing to reuse, every weight is read exactly once, and the product is
// bound by memory bandwidth, so this streams W rows sequentially (no packing) and keeps X in L1.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace InstructTune.Engine.Kernels;

internal static unsafe class GemmGemv
{
    /// <summary>Most rows of X the GEMV path takes; above this the blocked GEMM's reuse wins.</summary>
    public const int MaxRows = 4;

    private const long ParallelThreshold = 1L << 16;

    private static GemmArgs job;

    /// <summary>True for X·Wᵀ with M ≤ 4, W in fp32 or bf16, on a CPU with AVX2/FMA.</summary>
    public static bool Applies(in GemmArgs g) =>
        g.M <= MaxRows && g.TransB && !g.TransA && g.BKind != GemmBKind.Nf4 && GemmMicroKernel.UseAvx2;

    public static void Run(in GemmArgs g, int maxThreads)
    {
        int threads = (long)g.N * g.K < ParallelThreshold ? 1 : maxThreads;
        if (threads > 1 && GemmWorkers.TryEnter())
        {
            try { job = g; GemmWorkers.Run(&RunPart, threads); }
            finally { GemmWorkers.Exit(); }
            return;
        }
        Rows(g, 0, g.N);
    }

    private static void RunPart(int p, int n)
    {
        // Bands of 4 output columns (= W rows) so the 4-row kernel stays whole.
        int units = (job.N + 3) / 4;
        int lo = Math.Min(job.N, (int)((long)units * p / n) * 4), hi = Math.Min(job.N, (int)((long)units * (p + 1) / n) * 4);
        if (lo < hi) Rows(job, lo, hi);
    }

    private static void Rows(in GemmArgs g, int j0, int j1)
    {
        if (g.BKind == GemmBKind.Bf16) Rows(g, new Bf16Rows((ushort*)g.B, g.Ldb), j0, j1);
        else Rows(g, new F32Rows((float*)g.B, g.Ldb), j0, j1);
    }

    private static void Rows<TRows>(in GemmArgs g, TRows w, int j0, int j1) where TRows : struct, IBRows
    {
        int j = j0;
        if (g.M == 1)
        {
            for (; j + 4 <= j1; j += 4) OneRow4(g, w, j);
        }
        else
        {
            for (; j + 2 <= j1; j += 2) FourRows2(g, w, j);
        }
        for (; j < j1; j++)
            for (int m = 0; m < g.M; m++)
                Store(g, m, j, Dot(w, j, g.A + (nint)m * g.Lda, g.K));
    }

    /// <summary>M = 1: four W rows per pass, four accumulators, one X load shared by all four.</summary>
    private static void OneRow4<TRows>(in GemmArgs g, TRows w, int j) where TRows : struct, IBRows
    {
        float* x = g.A;
        nint r0 = j * w.Stride, r1 = r0 + w.Stride, r2 = r1 + w.Stride, r3 = r2 + w.Stride;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int k = 0, K = g.K;
        for (; k + 8 <= K; k += 8)
        {
            var xv = Avx.LoadVector256(x + k);
            a0 = Fma.MultiplyAdd(xv, w.Load8(r0 + k), a0);
            a1 = Fma.MultiplyAdd(xv, w.Load8(r1 + k), a1);
            a2 = Fma.MultiplyAdd(xv, w.Load8(r2 + k), a2);
            a3 = Fma.MultiplyAdd(xv, w.Load8(r3 + k), a3);
        }
        float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3);
        for (; k < K; k++)
        {
            s0 += x[k] * w.Load1(r0 + k); s1 += x[k] * w.Load1(r1 + k);
            s2 += x[k] * w.Load1(r2 + k); s3 += x[k] * w.Load1(r3 + k);
        }
        Store(g, 0, j, s0); Store(g, 0, j + 1, s1); Store(g, 0, j + 2, s2); Store(g, 0, j + 3, s3);
    }

    /// <summary>M = 2..4: two W rows per pass against four X rows (missing rows alias row 0 and are
    /// discarded), eight accumulators; each W vector is loaded once and used M times.</summary>
    private static void FourRows2<TRows>(in GemmArgs g, TRows w, int j) where TRows : struct, IBRows
    {
        float* x0 = g.A, x1 = g.A + (g.M > 1 ? g.Lda : 0), x2 = g.A + (g.M > 2 ? 2 * (nint)g.Lda : 0), x3 = g.A + (g.M > 3 ? 3 * (nint)g.Lda : 0);
        Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default;
        Vector256<float> a20 = default, a21 = default, a30 = default, a31 = default;
        nint r0 = j * w.Stride, r1 = r0 + w.Stride;
        int k = 0, K = g.K;
        for (; k + 8 <= K; k += 8)
        {
            var w0 = w.Load8(r0 + k); var w1 = w.Load8(r1 + k);
            var xv = Avx.LoadVector256(x0 + k); a00 = Fma.MultiplyAdd(xv, w0, a00); a01 = Fma.MultiplyAdd(xv, w1, a01);
            xv = Avx.LoadVector256(x1 + k); a10 = Fma.MultiplyAdd(xv, w0, a10); a11 = Fma.MultiplyAdd(xv, w1, a11);
            xv = Avx.LoadVector256(x2 + k); a20 = Fma.MultiplyAdd(xv, w0, a20); a21 = Fma.MultiplyAdd(xv, w1, a21);
            xv = Avx.LoadVector256(x3 + k); a30 = Fma.MultiplyAdd(xv, w0, a30); a31 = Fma.MultiplyAdd(xv, w1, a31);
        }
        Span<float> s = [Vector256.Sum(a00), Vector256.Sum(a01), Vector256.Sum(a10), Vector256.Sum(a11),
                         Vector256.Sum(a20), Vector256.Sum(a21), Vector256.Sum(a30), Vector256.Sum(a31)];
        for (int m = 0; m < g.M; m++)
        {
            float* x = g.A + (nint)m * g.Lda;
            float t0 = s[2 * m], t1 = s[2 * m + 1];
            for (int kk = k; kk < K; kk++) { t0 += x[kk] * w.Load1(r0 + kk); t1 += x[kk] * w.Load1(r1 + kk); }
            Store(g, m, j, t0); Store(g, m, j + 1, t1);
        }
    }

    private static float Dot<TRows>(TRows w, int j, float* x, int K) where TRows : struct, IBRows
    {
        var acc = Vector256<float>.Zero;
        nint r = j * w.Stride;
        int k = 0;
        for (; k + 8 <= K; k += 8) acc = Fma.MultiplyAdd(Avx.LoadVector256(x + k), w.Load8(r + k), acc);
        float s = Vector256.Sum(acc);
        for (; k < K; k++) s += x[k] * w.Load1(r + k);
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(in GemmArgs g, int m, int j, float dot)
    {
        float* c = g.C + (nint)m * g.Ldc + j;
        *c = g.Beta == 0f ? g.Alpha * dot : g.Alpha * dot + g.Beta * *c;
    }
}
