// The GEMM-tiled path of AttentionKernel for long sequences (training): per (batch, head), blocks of QB query
// rows meet the keys they may see in single-threaded packed GEMMs, S = scale·Q_blk·K_rangeᵀ and
// O_blk = softmax(S)·V_range, with the mask and softmax in one pass over S in between. The row and 4-row paths
// compute every score as its own hd-long dot product (about 20 GFLOP/s at hd = 64); here those dot products are
// a GEMM's micro-kernel. Causal blocks stop at their last row's position, so at most QB·(QB−1)/2 masked scores
// per block are computed and thrown away. Backward recomputes S from the saved log-sum-exp (no T×T state is
// kept between the passes), then dP = dO_blk·V_rangeᵀ, dS = P∘(dP − D)·scale, and three more GEMMs accumulate
// dQ, dK and dV; work is split by (batch, kv head) so that dk/dv rows have one writer.
using System.Buffers;
using System.Numerics.Tensors;

namespace InstructTune.Engine.Kernels;

/// <summary>Which kernel computes an attention call (tests pin one; Auto picks by shape).</summary>
internal enum AttentionPath { Auto, Gemm, Block4, Row }

public static unsafe partial class AttentionKernel
{
    /// <summary>Query rows per GEMM block: S (QB × keys) stays within L2 for a few hundred keys.</summary>
    private const int QB = 64;

    /// <summary>Switch for benchmarks: false keeps long sequences on the 4-row and row paths.</summary>
    public static bool UseGemm { get; set; } = true;

    /// <summary>Auto takes the GEMM path from this many query rows on: below, a block is mostly packing.</summary>
    internal const int GemmMinRows = 32;

    private static bool GemmApplies(AttentionDims d, AttentionPath path) =>
        path == AttentionPath.Gemm || (path == AttentionPath.Auto && UseGemm && d.Tq >= GemmMinRows);

    private static void ForwardGemm(float* Q, float* K, float* V, float* O, float* L, AttentionDims d, float scale, AttentionMask mask)
    {
        int H = d.H, Tq = d.Tq, Tk = d.Tk, hd = d.hd;
        Parallel2.For(d.B * H, (long)Tq * Tk * hd * 2, (s, e) =>
        {
            var buffer = ArrayPool<float>.Shared.Rent(QB * Tk);
            fixed (float* S = buffer)
                for (int item = s; item < e; item++)
                {
                    int b = item / H, h = item % H, kvh = h / d.Group;
                    for (int i0 = 0; i0 < Tq; i0 += QB)
                    {
                        int rows = Math.Min(QB, Tq - i0);
                        var (jLo, n) = BlockKeys(i0, rows, d, mask);
                        long qo = (((long)b * Tq + i0) * H + h) * hd, ko = KvIndex(b, jLo, kvh, d);
                        Product(false, true, rows, n, hd, scale, Q + qo, H * hd, K + ko, d.KV * hd, 0f, S, n);
                        for (int r = 0; r < rows; r++)
                            L[((long)b * H + h) * Tq + i0 + r] = SoftmaxRow(S + (long)r * n, jLo, n, b, h, i0 + r, d, mask, float.NaN);
                        Product(false, false, rows, hd, n, 1f, S, n, V + ko, d.KV * hd, 0f, O + qo, H * hd);
                    }
                }
            ArrayPool<float>.Shared.Return(buffer);
        });
    }

    private static void BackwardGemm(float* DO, float* Q, float* K, float* V, float* O, float* L, float* DQ, float* DK, float* DV,
        AttentionDims d, float scale, AttentionMask mask)
    {
        int H = d.H, KV = d.KV, Tq = d.Tq, Tk = d.Tk, hd = d.hd;
        Parallel2.For(d.B * KV, (long)d.Group * Tq * Tk * hd * 5, (s, e) =>
        {
            var pBuffer = ArrayPool<float>.Shared.Rent(QB * Tk);
            var dBuffer = ArrayPool<float>.Shared.Rent(QB * Tk);
            fixed (float* P = pBuffer, dS = dBuffer)
                for (int item = s; item < e; item++)
                {
                    int b = item / KV, kvh = item % KV;
                    for (int h = kvh * d.Group; h < (kvh + 1) * d.Group; h++)
                        for (int i0 = 0; i0 < Tq; i0 += QB)
                        {
                            int rows = Math.Min(QB, Tq - i0);
                            var (jLo, n) = BlockKeys(i0, rows, d, mask);
                            long qo = (((long)b * Tq + i0) * H + h) * hd, ko = KvIndex(b, jLo, kvh, d);
                            float* k = K + ko, v = V + ko;
                            Product(false, true, rows, n, hd, scale, Q + qo, H * hd, k, KV * hd, 0f, P, n);
                            for (int r = 0; r < rows; r++)
                                SoftmaxRow(P + (long)r * n, jLo, n, b, h, i0 + r, d, mask, L[((long)b * H + h) * Tq + i0 + r]);
                            Product(false, true, rows, n, hd, 1f, DO + qo, H * hd, v, KV * hd, 0f, dS, n);
                            for (int r = 0; r < rows; r++)
                            {
                                // dS = P ∘ (dP − D)·scale with D = do·o; rows that saw no key have P = 0 throughout.
                                long ro = qo + (long)r * H * hd;
                                float D = TensorPrimitives.Dot(new ReadOnlySpan<float>(DO + ro, hd), new ReadOnlySpan<float>(O + ro, hd));
                                var dsRow = new Span<float>(dS + (long)r * n, n);
                                TensorPrimitives.Subtract(dsRow, D, dsRow);
                                TensorPrimitives.Multiply(dsRow, new ReadOnlySpan<float>(P + (long)r * n, n), dsRow);
                                TensorPrimitives.Multiply(dsRow, scale, dsRow);
                            }
                            Product(false, false, rows, hd, n, 1f, dS, n, k, KV * hd, 1f, DQ + qo, H * hd);
                            Product(true, false, n, hd, rows, 1f, dS, n, Q + qo, H * hd, 1f, DK + ko, KV * hd);
                            Product(true, false, n, hd, rows, 1f, P, n, DO + qo, H * hd, 1f, DV + ko, KV * hd);
                        }
                }
            ArrayPool<float>.Shared.Return(pBuffer);
            ArrayPool<float>.Shared.Return(dBuffer);
        });
    }

    /// <summary>The keys [jLo, jLo + n) that any of rows i0..i0+rows−1 may see under causality and the window.</summary>
    private static (int JLo, int N) BlockKeys(int i0, int rows, AttentionDims d, AttentionMask mask)
    {
        int pos0 = d.QueryOffset + i0;
        int jLo = mask.Window > 0 ? Math.Max(0, pos0 - mask.Window + 1) : 0;
        int jHi = mask.Causal ? pos0 + rows - 1 : d.Tk - 1;
        return (jLo, jHi - jLo + 1);
    }

    /// <summary>
    /// Row i's scores s[0..n) for keys jLo.. become probabilities in place (0 where masked) and its log-sum-exp is
    /// returned (−∞ when it sees no key). With a known lse (backward) they become exp(s − lse) directly.
    /// </summary>
    private static float SoftmaxRow(float* s, int jLo, int n, int b, int h, int i, AttentionDims d, AttentionMask mask, float knownLse)
    {
        int pos = d.QueryOffset + i, Tk = d.Tk;
        int lo = mask.Window > 0 ? Math.Max(0, pos - mask.Window + 1) - jLo : 0;
        int hi = mask.Causal ? pos - jLo : n - 1;
        var row = new Span<float>(s, n);
        if (hi < lo || float.IsNegativeInfinity(knownLse)) { row.Clear(); return float.NegativeInfinity; }
        row[..lo].Clear();
        row[(hi + 1)..].Clear();
        var open = row[lo..(hi + 1)];
        if (mask.KeyValid != null || mask.DocIds != null || mask.HasBias)
        {
            // Causality and the window are already cut away by [lo, hi]; padding, documents and bias remain.
            bool biased = mask.HasBias;
            for (int c = 0; c < open.Length; c++)
            {
                int j = jLo + lo + c;
                if (!mask.Allows(b, pos, j, Tk)) open[c] = float.NegativeInfinity;
                else if (biased) open[c] += mask.BiasAt(b, h, i, j, d);
            }
        }
        if (!float.IsNaN(knownLse))
        {
            TensorPrimitives.Subtract(open, knownLse, open);
            VectorMath.Exp(open, open);
            return knownLse;
        }
        float max = TensorPrimitives.Max(open);
        if (float.IsNegativeInfinity(max)) { open.Clear(); return float.NegativeInfinity; }
        TensorPrimitives.Subtract(open, max, open);
        VectorMath.Exp(open, open);
        float sum = TensorPrimitives.Sum(open);
        TensorPrimitives.Multiply(open, 1f / sum, open);
        return max + MathF.Log(sum);
    }

    /// <summary>One single-threaded GEMM (the caller's thread is already one of the team's).</summary>
    private static void Product(bool transA, bool transB, int M, int N, int K, float alpha, float* A, int lda, float* B, int ldb,
        float beta, float* C, int ldc)
    {
        var g = GemmArgs.Create(transA, transB, M, N, K, alpha, A, lda, B, ldb, GemmBKind.F32, beta, C, ldc);
        GemmBlocked.Serial(g, 0, M, 0, N);
    }
}
