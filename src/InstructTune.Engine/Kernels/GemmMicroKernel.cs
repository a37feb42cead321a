// The GEMM register-blocked micro-kernel: one MR×NR tile of C from a packed A sliver (kc×MR) and a packed
// B sliver (kc×NR). Everything else in the managed GEMM exists to feed this loop from L1.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace InstructTune.Engine.Kernels;

internal static unsafe class GemmMicroKernel
{
    /// <summary>Tile height (rows of C) and width (columns of C). 6×16 keeps 12 ymm accumulators,
    /// two B vectors and one broadcast A value live: 15 of the 16 AVX2 registers, so nothing spills,
    /// and each k step issues 12 FMAs for 2 loads + 6 broadcasts.</summary>
    public const int MR = 6, NR = 16;

    /// <summary>True when the AVX2/FMA tile runs; tests can force the portable tile to exercise it.</summary>
    public static bool UseAvx2 { get; set; } = Fma.IsSupported && Avx2.IsSupported;

    /// <summary>
    /// C[0..MR, 0..NR] (row stride ldc) = alpha·Σ_k a[k·MR + i]·b[k·NR + j] + beta·C, beta = 0 ignoring C.
    /// a and b are packed slivers; b is 32-byte aligned.
    /// </summary>
    public static void Tile(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        if (UseAvx2) Avx2Tile(kc, a, b, c, ldc, alpha, beta);
        else PortableTile(kc, a, b, c, ldc, alpha, beta);
    }

    /// <summary>A partial tile at the right or bottom edge: computes the full tile into a scratch block
    /// (the packed slivers are zero-padded, so the extra lanes are harmless) and merges mr×nr of it.</summary>
    public static void EdgeTile(int kc, float* a, float* b, float* c, nint ldc, int mr, int nr, float alpha, float beta)
    {
        float* tmp = stackalloc float[MR * NR];
        Tile(kc, a, b, tmp, NR, 1f, 0f);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
            {
                float v = alpha * tmp[i * NR + j];
                c[i * ldc + j] = beta == 0f ? v : v + beta * c[i * ldc + j];
            }
    }

    // Not inlined: as its own method the 15 live vectors get the whole register file; inlined into the
    // macro loop (which Tier-1 does otherwise) they compete with the loop's pointers and spill.
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Avx2Tile(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        // Touch the C rows early so their lines arrive while the k loop runs.
        for (int i = 0; i < MR; i++) Sse.Prefetch0(c + i * ldc);
        for (int k = 0; k < kc; k++)
        {
            // One k step: two B vectors, six broadcasts, twelve FMAs into independent accumulators.
            var b0 = Avx.LoadAlignedVector256(b);
            var b1 = Avx.LoadAlignedVector256(b + 8);
            var av = Avx.BroadcastScalarToVector256(a);
            c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Avx.BroadcastScalarToVector256(a + 1);
            c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Avx.BroadcastScalarToVector256(a + 2);
            c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Avx.BroadcastScalarToVector256(a + 3);
            c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
            av = Avx.BroadcastScalarToVector256(a + 4);
            c40 = Fma.MultiplyAdd(av, b0, c40); c41 = Fma.MultiplyAdd(av, b1, c41);
            av = Avx.BroadcastScalarToVector256(a + 5);
            c50 = Fma.MultiplyAdd(av, b0, c50); c51 = Fma.MultiplyAdd(av, b1, c51);
            a += MR; b += NR;
        }
        var va = Vector256.Create(alpha);
        StoreRow(c, c00, c01, va, beta);
        StoreRow(c + ldc, c10, c11, va, beta);
        StoreRow(c + 2 * ldc, c20, c21, va, beta);
        StoreRow(c + 3 * ldc, c30, c31, va, beta);
        StoreRow(c + 4 * ldc, c40, c41, va, beta);
        StoreRow(c + 5 * ldc, c50, c51, va, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector256<float> lo, Vector256<float> hi, Vector256<float> va, float beta)
    {
        if (beta == 0f)
        {
            // beta = 0 overwrites: C is never read, so NaN/garbage in C cannot leak through 0·NaN.
            Avx.Store(c, Avx.Multiply(lo, va));
            Avx.Store(c + 8, Avx.Multiply(hi, va));
        }
        else if (beta == 1f)
        {
            Avx.Store(c, Fma.MultiplyAdd(lo, va, Avx.LoadVector256(c)));
            Avx.Store(c + 8, Fma.MultiplyAdd(hi, va, Avx.LoadVector256(c + 8)));
        }
        else
        {
            var vb = Vector256.Create(beta);
            Avx.Store(c, Fma.MultiplyAdd(lo, va, Avx.Multiply(vb, Avx.LoadVector256(c))));
            Avx.Store(c + 8, Fma.MultiplyAdd(hi, va, Avx.Multiply(vb, Avx.LoadVector256(c + 8))));
        }
    }

    /// <summary>The fallback tile for CPUs without AVX2/FMA: the same contract with Vector128 arithmetic
    /// (SSE or AdvSimd; software elsewhere), accumulating a row of 16 as four 4-lane vectors.</summary>
    private static void PortableTile(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector128<float>* acc = stackalloc Vector128<float>[MR * 4];
        for (int i = 0; i < MR * 4; i++) acc[i] = default;
        for (int k = 0; k < kc; k++, a += MR, b += NR)
        {
            var b0 = Vector128.Load(b); var b1 = Vector128.Load(b + 4);
            var b2 = Vector128.Load(b + 8); var b3 = Vector128.Load(b + 12);
            for (int i = 0; i < MR; i++)
            {
                var av = Vector128.Create(a[i]);
                acc[i * 4] += av * b0; acc[i * 4 + 1] += av * b1;
                acc[i * 4 + 2] += av * b2; acc[i * 4 + 3] += av * b3;
            }
        }
        for (int i = 0; i < MR; i++)
            for (int q = 0; q < 4; q++)
            {
                float* ci = c + i * ldc + q * 4;
                var v = acc[i * 4 + q] * alpha;
                if (beta != 0f) v += Vector128.Load(ci) * beta;
                v.Store(ci);
            }
    }
}
