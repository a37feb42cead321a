// The GEMM register-blocked micro-kernel: one MR×NR tile of C from a packed A sliver (kc×MR) and a packed
// B sliver (kc×NR). Everything else in the managed GEMM exists to feed this loop from L1.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace InstructTune.Engine.Kernels;

/// <summary>Which register tile serves: AVX-512 12×16, AVX2/FMA 6×16, or the portable 6×16.</summary>
internal enum GemmTileKind { Portable, Avx2, Avx512 }

internal static unsafe class GemmMicroKernel
{
    /// <summary>Tile width (columns of C), the same for every kind so B packing never changes.</summary>
    public const int NR = 16;

    /// <summary>The tallest tile (rows of C) of any kind, for scratch sizing.</summary>
    public const int MaxMR = 12;

    /// <summary>The tile in use: the widest the CPU supports. Tests set it to exercise each kind; the
    /// driver reads it once per thread's share, so packing and tile always agree on MR.</summary>
    public static GemmTileKind Kind { get; set; } =
        Avx512F.IsSupported && Fma.IsSupported ? GemmTileKind.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? GemmTileKind.Avx2 : GemmTileKind.Portable;

    /// <summary>Human name of the tile in use, for logs and benchmarks.</summary>
    public static string Name => Kind switch
    {
        GemmTileKind.Avx512 => "AVX-512 12x16",
        GemmTileKind.Avx2 => "AVX2/FMA 6x16",
        _ => "portable 6x16",
    };

    /// <summary>True when AVX2/FMA code may run (GEMV and the vector packers rely on it).</summary>
    public static bool UseAvx2 => Kind != GemmTileKind.Portable;

    /// <summary>
    /// Tile height for the current kind. AVX2 6×16: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of
    /// 16 registers, 12 FMAs per 2 loads + 6 broadcasts. AVX-512 12×16: 12 zmm accumulators, one zmm B load
    /// and 12 broadcast FMAs per k step: half the instructions per flop (the front end, not the FMA pipes,
    /// is what the 6×16 loop runs into), and the 32-register file leaves room.
    /// </summary>
    public static int MR => RowsOf(Kind);

    public static int RowsOf(GemmTileKind kind) => kind == GemmTileKind.Avx512 ? 12 : 6;

    /// <summary>
    /// C[0..MR, 0..NR] (row stride ldc) = alpha·Σ_k a[k·MR + i]·b[k·NR + j] + beta·C, beta = 0 ignoring C.
    /// a and b are packed slivers; b is 64-byte aligned.
    /// </summary>
    public static void Tile(GemmTileKind kind, int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        switch (kind)
        {
            case GemmTileKind.Avx512: Avx512Tile(kc, a, b, c, ldc, alpha, beta); break;
            case GemmTileKind.Avx2: Avx2Tile(kc, a, b, c, ldc, alpha, beta); break;
            default: PortableTile(RowsOf(kind), kc, a, b, c, ldc, alpha, beta); break;
        }
    }

    /// <summary>A partial tile at the right or bottom edge: computes the full tile into a scratch block
    /// (the packed slivers are zero-padded, so the extra lanes are harmless) and merges mr×nr of it.</summary>
    public static void EdgeTile(GemmTileKind kind, int kc, float* a, float* b, float* c, nint ldc, int mr, int nr, float alpha, float beta)
    {
        float* tmp = stackalloc float[MaxMR * NR];
        Tile(kind, kc, a, b, tmp, NR, 1f, 0f);
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
        for (int i = 0; i < 6; i++) Sse.Prefetch0(c + i * ldc);
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
            a += 6; b += NR;
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static void Avx512Tile(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default;
        Vector512<float> c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (int i = 0; i < 12; i++) Sse.Prefetch0(c + i * ldc);
        for (int k = 0; k < kc; k++)
        {
            // One B row of 16, twelve A values each broadcast straight into an FMA operand.
            var bv = Avx512F.LoadAlignedVector512(b);
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[0]), bv, c0);
            c1 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[1]), bv, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[2]), bv, c2);
            c3 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[3]), bv, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[4]), bv, c4);
            c5 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[5]), bv, c5);
            c6 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[6]), bv, c6);
            c7 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[7]), bv, c7);
            c8 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[8]), bv, c8);
            c9 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[9]), bv, c9);
            c10 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[10]), bv, c10);
            c11 = Avx512F.FusedMultiplyAdd(Vector512.Create(a[11]), bv, c11);
            a += 12; b += NR;
        }
        var va = Vector512.Create(alpha);
        StoreRow(c, c0, va, beta); StoreRow(c + ldc, c1, va, beta);
        StoreRow(c + 2 * ldc, c2, va, beta); StoreRow(c + 3 * ldc, c3, va, beta);
        StoreRow(c + 4 * ldc, c4, va, beta); StoreRow(c + 5 * ldc, c5, va, beta);
        StoreRow(c + 6 * ldc, c6, va, beta); StoreRow(c + 7 * ldc, c7, va, beta);
        StoreRow(c + 8 * ldc, c8, va, beta); StoreRow(c + 9 * ldc, c9, va, beta);
        StoreRow(c + 10 * ldc, c10, va, beta); StoreRow(c + 11 * ldc, c11, va, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector512<float> acc, Vector512<float> va, float beta)
    {
        // Same contract as the 256-bit StoreRow: beta = 0 never reads C.
        if (beta == 0f) Avx512F.Store(c, Avx512F.Multiply(acc, va));
        else if (beta == 1f) Avx512F.Store(c, Avx512F.FusedMultiplyAdd(acc, va, Avx512F.LoadVector512(c)));
        else Avx512F.Store(c, Avx512F.FusedMultiplyAdd(acc, va, Avx512F.Multiply(Vector512.Create(beta), Avx512F.LoadVector512(c))));
    }

    /// <summary>The fallback tile for CPUs without AVX2/FMA: the same contract with Vector128 arithmetic
    /// (SSE or AdvSimd; software elsewhere), accumulating a row of 16 as four 4-lane vectors.</summary>
    private static void PortableTile(int MR, int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {        Vector128<float>* acc = stackalloc Vector128<float>[MaxMR * 4];
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
