// Y[T, O] = X[T, K] · Wᵀ with W in q8_0, held exactly as ggml (and GGUF, and our q8_0 checkpoints) store it:
// each row of K values is K/32 blocks of 34 bytes, [IEEE half scale d][32 × int8 quants q], value ≈ d·q
// (ggml-common.h block_q8_0; Engine.Quantization.Q8_0). So a q8_0 checkpoint is streamed in place from its
// memory mapping at 1.0625 bytes per weight. As llama.cpp's q8_0 × q8_0 dot product: each token's row of X is
// quantised to q8_0 too (per block dx = max|x|/127, qx = round(x/dx)), and y = Σ_blocks dw·dx·Σⱼ qwⱼ·qxⱼ with
// the 32-term integer sums exact in int32. With AVX-VNNI one vpdpbusd does 32 int8 multiply-adds (|qx| as u8 ×
// qw given qx's sign as s8, llama.cpp's trick); without it, the widening vpmaddubsw + vpmaddwd pair. Four rows
// share each block of x (its |qx| computed once), and the next four rows are prefetched at the pace these are
// read, as the float32 GEMV does (the hardware prefetcher stops at 4 KiB pages). Rows split across the worker team.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace InstructTune.Engine.Kernels;

public static unsafe class Q8Gemv
{
    public const int Block = 32;

    /// <summary>Bytes of one block: a half scale then 32 int8 quants.</summary>
    public const int BlockBytes = 34;

    /// <summary>Tests switch the VNNI instruction off to cover the widening path on VNNI machines.</summary>
    internal static bool UseVnni = AvxVnni.IsSupported;

    /// <summary>Quantises one vector to q8_0 (ggml's rule: d = max|x|/127, q = round-half-away(x/d)) into split
    /// quants q [K] and float32 scales d [K/32]; K % 32 == 0.</summary>
    public static void QuantizeRow(ReadOnlySpan<float> x, Span<sbyte> q, Span<float> d)
    {
        int K = x.Length;
        for (int b = 0; b < K / Block; b++)
        {
            var blk = x.Slice(b * Block, Block);
            float amax = 0;
            foreach (float v in blk) amax = Math.Max(amax, Math.Abs(v));
            float s = amax / 127f, inv = s != 0 ? 1f / s : 0f;
            d[b] = s;
            for (int j = 0; j < Block; j++) q[b * Block + j] = (sbyte)MathF.Round(blk[j] * inv, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>An IEEE half as float32, exact for every finite half (normal and subnormal): the half's exponent
    /// and mantissa bits moved into float32's fields, then rescaled by 2^(127−15).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToSingle(ushort h) =>
        BitConverter.Int32BitsToSingle(((h & 0x8000) << 16) | ((h & 0x7FFF) << 13)) * 5.192296858534828e33f;

    [ThreadStatic] private static sbyte[]? xqScratch;
    [ThreadStatic] private static float[]? xdScratch;

    /// <summary>X [T, K] quantised into per-thread scratch (reused across calls; valid until this thread's next call).</summary>
    public static (sbyte[] Q, float[] D) QuantizeActivations(ReadOnlySpan<float> X, int T, int K)
    {
        int nb = K / Block;
        if (xqScratch == null || xqScratch.Length < T * K) xqScratch = new sbyte[T * K];
        if (xdScratch == null || xdScratch.Length < T * nb) xdScratch = new float[T * nb];
        for (int t = 0; t < T; t++) QuantizeRow(X.Slice(t * K, K), xqScratch.AsSpan(t * K, K), xdScratch.AsSpan(t * nb, nb));
        return (xqScratch, xdScratch);
    }

    /// <summary>
    /// Y[T, O] = X[T, K]·Wᵀ for W = O rows of K/32 q8_0 blocks (34 bytes each); K a multiple of 32; Y must not alias X.
    /// </summary>
    public static void Forward(ReadOnlySpan<float> X, ReadOnlySpan<byte> W, int O, int K, Span<float> Y, int T)
    {
        if (K % Block != 0) throw new ArgumentException($"Q8Gemv: K = {K} is not a multiple of {Block}");
        long rowBytes = (long)K / Block * BlockBytes;
        if (X.Length < (long)T * K || Y.Length < (long)T * O || W.Length < O * rowBytes)
            throw new ArgumentException($"Q8Gemv: X {X.Length} / W {W.Length} bytes / Y {Y.Length} do not fit T={T}, W [{O},{K}] q8_0");
        var (xq, xd) = QuantizeActivations(X, T, K);
        fixed (byte* w = W)
        fixed (sbyte* pxq = xq)
        fixed (float* pxd = xd, y = Y)
        {
            nint wp = (nint)w, xqp = (nint)pxq, xdp = (nint)pxd, yp = (nint)y;
            int nb = K / Block;
            int threads = (long)O * K >= 1 << 16 ? Math.Min(Parallel2.Threads, Math.Max(1, O / 4)) : 1;
            void Part(int part)
            {
                int r0 = (int)((long)O * part / threads / 4 * 4), r1 = part == threads - 1 ? O : (int)((long)O * (part + 1) / threads / 4 * 4);
                for (int t = 0; t < T; t++)
                    Rows((byte*)wp, K, (sbyte*)xqp + (long)t * K, (float*)xdp + (long)t * nb, (float*)yp + (long)t * O, r0, r1);
            }
            if (threads == 1) Part(0); else Parallel2.RunParts(threads, Part);
        }
    }

    /// <summary>y[o] = W[o, :]·x for rows r0..r1 of one token, x given quantised (xq [K], xd [K/32]).</summary>
    public static void Rows(byte* w, int K, sbyte* xq, float* xd, float* y, int r0, int r1)
    {
        int nb = K / Block;
        long rowBytes = (long)nb * BlockBytes;
        int o = r0;
        if (Avx2.IsSupported && Fma.IsSupported)
            for (; o + 4 <= r1; o += 4) Rows4(w + o * rowBytes, rowBytes, nb, xq, xd, y + o, o + 4 < r1);
        for (; o < r1; o++) y[o] = RowScalar(w + o * rowBytes, nb, xq, xd);
    }

    /// <summary>Four consecutive rows starting at w (row stride rowBytes); prefetch touches the four after them.</summary>
    private static void Rows4(byte* w, long rowBytes, int nb, sbyte* xq, float* xd, float* y, bool prefetch)
    {
        byte* w0 = w, w1 = w + rowBytes, w2 = w + 2 * rowBytes, w3 = w + 3 * rowBytes;
        // The next four rows follow these in memory; each block step reads 4 × 34 = 136 bytes of them in total.
        byte* next = w + 4 * rowBytes;
        var a0 = Vector256<float>.Zero; var a1 = Vector256<float>.Zero; var a2 = Vector256<float>.Zero; var a3 = Vector256<float>.Zero;
        for (int b = 0; b < nb; b++)
        {
            if (prefetch) { Sse.Prefetch1(next); Sse.Prefetch1(next + 64); Sse.Prefetch1(next + 128); next += 4 * BlockBytes; }
            var xv = Vector256.Load(xq + b * Block);
            var ax = Avx2.Abs(xv);                      // |qx| as u8
            float dx = xd[b];
            long off = (long)b * BlockBytes;
            a0 = Fma.MultiplyAdd(Dot(ax, xv, w0 + off), Vector256.Create(HalfToSingle(*(ushort*)(w0 + off)) * dx), a0);
            a1 = Fma.MultiplyAdd(Dot(ax, xv, w1 + off), Vector256.Create(HalfToSingle(*(ushort*)(w1 + off)) * dx), a1);
            a2 = Fma.MultiplyAdd(Dot(ax, xv, w2 + off), Vector256.Create(HalfToSingle(*(ushort*)(w2 + off)) * dx), a2);
            a3 = Fma.MultiplyAdd(Dot(ax, xv, w3 + off), Vector256.Create(HalfToSingle(*(ushort*)(w3 + off)) * dx), a3);
        }
        y[0] = Vector256.Sum(a0); y[1] = Vector256.Sum(a1); y[2] = Vector256.Sum(a2); y[3] = Vector256.Sum(a3);
    }

    /// <summary>The 32 products qw·qx of one block as 8 float32 partial sums (exact: each |partial| ≤ 4·127²).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Dot(Vector256<byte> ax, Vector256<sbyte> xv, byte* block)
    {
        var sw = Avx2.Sign(Vector256.Load((sbyte*)(block + 2)), xv);   // qw with qx's sign (0 where qx = 0)
        Vector256<int> dot = UseVnni
            ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ax, sw)
            : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ax, sw), Vector256<short>.One);
        return Avx.ConvertToVector256Single(dot);
    }

    private static float RowScalar(byte* w, int nb, sbyte* xq, float* xd)
    {
        float s = 0;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = w + (long)b * BlockBytes;
            int isum = 0;
            for (int j = 0; j < Block; j++) isum += (sbyte)blk[2 + j] * xq[b * Block + j];
            s += HalfToSingle(*(ushort*)blk) * xd[b] * isum;
        }
        return s;
    }

    /// <summary>The definition in double precision, on the same quantised X as Forward: the test oracle.</summary>
    public static void ForwardNaive(ReadOnlySpan<float> X, ReadOnlySpan<byte> W, int O, int K, Span<float> Y, int T)
    {
        int nb = K / Block;
        var xq = new sbyte[K]; var xd = new float[nb];
        for (int t = 0; t < T; t++)
        {
            QuantizeRow(X.Slice(t * K, K), xq, xd);
            for (int o = 0; o < O; o++)
            {
                double acc = 0;
                for (int k = 0; k < K; k++)
                {
                    var blk = W.Slice((o * nb + k / Block) * BlockBytes, BlockBytes);
                    double dw = (double)System.Buffers.Binary.BinaryPrimitives.ReadHalfLittleEndian(blk);
                    acc += dw * (sbyte)blk[2 + k % Block] * xd[k / Block] * xq[k];
                }
                Y[t * O + o] = (float)acc;
            }
        }
    }
}
