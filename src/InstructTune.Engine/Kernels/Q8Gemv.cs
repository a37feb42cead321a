// Y[T, O] = X[T, K] · Wᵀ with W in q8_0 (ggml's block format: blocks of 32 weights along K, one scale each),
// held split as int8 quants Q [O, K] and float32 scales D [O, K/32] so the decode loop streams 1.125 bytes per
// weight with aligned quants. As llama.cpp's q8_0 × q8_0 dot product: each token's row of X is quantised to q8_0
// too (per block dx = max|x|/127, qx = round(x/dx)), and y = Σ_blocks dw·dx·Σⱼ qwⱼ·qxⱼ with the 32-term integer
// sums exact in int32. With AVX-VNNI one vpdpbusd does 32 int8 multiply-adds (|qx| as u8 × sign-moved qw as s8,
// llama.cpp's trick); without it, the widening vpmaddubsw + vpmaddwd pair. Rows split across the worker team.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace InstructTune.Engine.Kernels;

public static unsafe class Q8Gemv
{
    public const int Block = 32;

    /// <summary>Tests switch the VNNI instruction off to cover the widening path on VNNI machines.</summary>
    internal static bool UseVnni = AvxVnni.IsSupported;

    /// <summary>Quantises one vector to q8_0 blocks (ggml's rule: d = max|x|/127, q = round-half-away(x/d)); K % 32 == 0.</summary>
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

    /// <summary>
    /// Y[T, O] = X[T, K]·Wᵀ for W = (Q [O, K] int8, D [O, K/32] scales); K a multiple of 32; Y must not alias X.
    /// </summary>
    public static void Forward(ReadOnlySpan<float> X, ReadOnlySpan<sbyte> Q, ReadOnlySpan<float> D, int O, int K, Span<float> Y, int T)
    {
        if (K % Block != 0) throw new ArgumentException($"Q8Gemv: K = {K} is not a multiple of {Block}");
        if (X.Length < (long)T * K || Y.Length < (long)T * O || Q.Length < (long)O * K || D.Length < (long)O * (K / Block))
            throw new ArgumentException($"Q8Gemv: X {X.Length} / Q {Q.Length} / D {D.Length} / Y {Y.Length} do not fit T={T}, W [{O},{K}]");
        int nb = K / Block;
        var xq = new sbyte[T * K];
        var xd = new float[T * nb];
        for (int t = 0; t < T; t++) QuantizeRow(X.Slice(t * K, K), xq.AsSpan(t * K, K), xd.AsSpan(t * nb, nb));
        fixed (sbyte* q = Q, pxq = xq)
        fixed (float* d = D, pxd = xd, y = Y)
        {
            nint qp = (nint)q, dp = (nint)d, xqp = (nint)pxq, xdp = (nint)pxd, yp = (nint)y;
            int threads = (long)O * K >= 1 << 16 ? Math.Min(Parallel2.Threads, Math.Max(1, O / 4)) : 1;
            void Part(int part)
            {
                int r0 = (int)((long)O * part / threads), r1 = (int)((long)O * (part + 1) / threads);
                for (int t = 0; t < T; t++)
                    Rows((sbyte*)qp, (float*)dp, (sbyte*)xqp + (long)t * K, (float*)xdp + (long)t * nb, (float*)yp + (long)t * O, K, r0, r1);
            }
            if (threads == 1) Part(0); else Parallel2.RunParts(threads, Part);
        }
    }

    private static void Rows(sbyte* q, float* d, sbyte* xq, float* xd, float* y, int K, int r0, int r1)
    {
        int nb = K / Block;
        for (int o = r0; o < r1; o++)
        {
            sbyte* w = q + (long)o * K;
            float* dw = d + (long)o * nb;
            if (Avx2.IsSupported && Fma.IsSupported)
            {
                var acc = Vector256<float>.Zero;
                // Touch the next row's quants ahead of use (the 4 KiB-page prefetcher limit, as LinearKernels).
                byte* next = (byte*)(w + K);
                for (int b = 0; b < nb; b++)
                {
                    if (o + 1 < r1 && (b & 1) == 0) Sse.Prefetch1(next + b * Block);
                    var wv = Vector256.Load(w + b * Block);
                    var xv = Vector256.Load(xq + b * Block);
                    var ax = Avx2.Abs(xv);              // |qx| as u8
                    var sw = Avx2.Sign(wv, xv);         // qw with qx's sign (0 where qx = 0)
                    Vector256<int> dot;
                    if (UseVnni) dot = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ax, sw);
                    else dot = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ax, sw), Vector256<short>.One);
                    acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot), Vector256.Create(dw[b] * xd[b]), acc);
                }
                y[o] = Vector256.Sum(acc);
            }
            else
            {
                float s = 0;
                for (int b = 0; b < nb; b++)
                {
                    int isum = 0;
                    for (int j = 0; j < Block; j++) isum += w[b * Block + j] * xq[b * Block + j];
                    s += dw[b] * xd[b] * isum;
                }
                y[o] = s;
            }
        }
    }

    /// <summary>The definition in double precision, on the same quantised X as Forward: the test oracle.</summary>
    public static void ForwardNaive(ReadOnlySpan<float> X, ReadOnlySpan<sbyte> Q, ReadOnlySpan<float> D, int O, int K, Span<float> Y, int T)
    {
        int nb = K / Block;
        var xq = new sbyte[K]; var xd = new float[nb];
        for (int t = 0; t < T; t++)
        {
            QuantizeRow(X.Slice(t * K, K), xq, xd);
            for (int o = 0; o < O; o++)
            {
                double acc = 0;
                for (int k = 0; k < K; k++) acc += (double)D[o * nb + k / Block] * Q[o * K + k] * xd[k / Block] * xq[k];
                Y[t * O + o] = (float)acc;
            }
        }
    }
}
