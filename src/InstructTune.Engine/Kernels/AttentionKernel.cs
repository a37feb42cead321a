// Scaled-dot-product attention with grouped-query heads. Short query runs are computed one row (or four rows,
// AttentionBlock4) at a time, long ones in GEMM tiles of 64 rows (AttentionGemm); either way the T×T matrix is
// never materialised (at most 64 rows of scores per thread). Forward saves the
// log-sum-exp per row; backward recomputes the probabilities from it (flash-attention's trade).
//
//   q, o (B, Tq, H, hd)   k, v (B, Tk, KV, hd) (batch stride KvRowsPerBatch·KV·hd)   lse (B, H, Tq)
//   query head h reads kv head h / (H / KV); query row i sits at absolute position Tk − Tq + i.
//   s_ij = scale·q_i·k_j + bias_ij over the keys the mask allows; o_i = Σ_j softmax(s_i)_j v_j.
// A row that sees no key at all (e.g. a padding query) gets o = 0, lse = −∞ and no gradient.
using System.Buffers;
using System.Numerics.Tensors;

namespace InstructTune.Engine.Kernels;

/// <summary>Sizes of one attention call.</summary>
public readonly record struct AttentionDims(int B, int Tq, int Tk, int H, int KV, int hd)
{
    /// <summary>Rows reserved per batch entry in k/v (a KV cache may hold more rows than Tk); 0 = Tk.</summary>
    public int KvRowsPerBatch { get; init; }
    public int KvRows => KvRowsPerBatch == 0 ? Tk : KvRowsPerBatch;
    public int Group => H / KV;
    public int QueryOffset => Tk - Tq;

    internal void Validate(string k)
    {
        if (B <= 0 || Tq <= 0 || Tk <= 0 || H <= 0 || KV <= 0 || hd <= 0) throw new ArgumentException($"{k}: dimensions must be positive ({this})");
        if (H % KV != 0) throw new ArgumentException($"{k}: {H} query heads are not a multiple of {KV} kv heads");
        if (Tq > Tk) throw new ArgumentException($"{k}: {Tq} queries but only {Tk} keys");
        if (KvRows < Tk) throw new ArgumentException($"{k}: KvRowsPerBatch {KvRows} < Tk {Tk}");
    }
}

/// <summary>Which keys each query may see, besides causality. Arrays, not spans, because kernels run them on worker threads.</summary>
public sealed class AttentionMask
{
    /// <summary>Query i sees only keys j ≤ its position (default on).</summary>
    public bool Causal { get; init; } = true;
    /// <summary>Sliding window W &gt; 0: query at position p sees keys j with p − W &lt; j (Mistral convention); 0 = none.</summary>
    public int Window { get; init; }
    /// <summary>(B, Tk): 0 marks a padding key that nobody attends to.</summary>
    public int[]? KeyValid { get; init; }
    /// <summary>(B, Tk): packed sequences; a query sees only keys with its own document id (block-diagonal mask).</summary>
    public int[]? DocIds { get; init; }
    /// <summary>Additive bias (BiasBatches, BiasHeads, Tq, Tk) with BiasBatches ∈ {1, B}, BiasHeads ∈ {1, H}; not differentiated.</summary>
    public float[]? Bias { get; init; }
    public int BiasBatches { get; init; } = 1;
    public int BiasHeads { get; init; } = 1;
    /// <summary>A compact additive key bias (instruction-biased attention): every query of head h adds HeadKeyBias[h]
    /// to its score of key j when KeyFlags[b·Tk + j] ≠ 0. KeyFlags (B, Tk), HeadKeyBias (H); both or neither; not
    /// differentiated here (Ops.KeyBiasedAttention computes its gradient).</summary>
    public byte[]? KeyFlags { get; init; }
    public float[]? HeadKeyBias { get; init; }

    /// <summary>This mask plus the per-key bias (replacing any it had).</summary>
    public AttentionMask WithKeyBias(byte[] keyFlags, float[] headKeyBias) => new()
    {
        Causal = Causal, Window = Window, KeyValid = KeyValid, DocIds = DocIds,
        Bias = Bias, BiasBatches = BiasBatches, BiasHeads = BiasHeads, KeyFlags = keyFlags, HeadKeyBias = headKeyBias,
    };

    /// <summary>Whether any additive bias (dense or per key) applies.</summary>
    internal bool HasBias => Bias != null || KeyFlags != null;

    /// <summary>The additive bias of (b, head h, query row i, key j), 0 when none.</summary>
    internal float BiasAt(int b, int h, int i, int j, AttentionDims d) =>
        (Bias == null ? 0f : Bias[BiasOffset(b, h, i, d) + j]) + (KeyFlags != null && KeyFlags[b * d.Tk + j] != 0 ? HeadKeyBias![h] : 0f);

    public static readonly AttentionMask CausalOnly = new();

    internal bool Allows(int b, int pos, int j, int Tk)
    {
        if (Causal && j > pos) return false;
        if (Window > 0 && j <= pos - Window) return false;
        if (KeyValid != null && KeyValid[b * Tk + j] == 0) return false;
        if (DocIds != null && DocIds[b * Tk + j] != DocIds[b * Tk + pos]) return false;
        return true;
    }

    internal int BiasOffset(int b, int h, int i, AttentionDims d) =>
        (((BiasBatches == 1 ? 0 : b) * BiasHeads + (BiasHeads == 1 ? 0 : h)) * d.Tq + i) * d.Tk;

    internal void Validate(string k, AttentionDims d)
    {
        if (KeyValid != null) KernelChecks.Len(k, "mask.KeyValid", KeyValid.Length, (long)d.B * d.Tk);
        if (DocIds != null) KernelChecks.Len(k, "mask.DocIds", DocIds.Length, (long)d.B * d.Tk);
        if (Bias != null) KernelChecks.Len(k, "mask.Bias", Bias.Length, (long)BiasBatches * BiasHeads * d.Tq * d.Tk);
        if ((KeyFlags == null) != (HeadKeyBias == null)) throw new ArgumentException($"{k}: mask.KeyFlags and mask.HeadKeyBias go together");
        if (KeyFlags != null) KernelChecks.Len(k, "mask.KeyFlags", KeyFlags.Length, (long)d.B * d.Tk);
        if (HeadKeyBias != null) KernelChecks.Len(k, "mask.HeadKeyBias", HeadKeyBias.Length, d.H);
    }
}

public static unsafe partial class AttentionKernel
{
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        AttentionDims d, float scale, AttentionMask? mask = null) => Forward(q, k, v, o, lse, d, scale, mask, AttentionPath.Auto);

    internal static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        AttentionDims d, float scale, AttentionMask? mask, AttentionPath path)
    {
        mask ??= AttentionMask.CausalOnly;
        Check("Attention.Forward", q.Length, k.Length, v.Length, o.Length, lse.Length, d, mask);
        int H = d.H, KV = d.KV, hd = d.hd, Tq = d.Tq, Tk = d.Tk;
        fixed (float* pq = q, pk = k, pv = v, po = o, pl = lse)
        {
            float* Q = pq, K = pk, V = pv, O = po, L = pl;
            if (GemmApplies(d, path)) { ForwardGemm(Q, K, V, O, L, d, scale, mask); return; }
            Parallel2.For(d.B * H, (long)Tq * Tk * hd * 2, (s, e) =>
            {
                var scores = ArrayPool<float>.Shared.Rent(R * Tk);
                bool block = path != AttentionPath.Row && Block4Applies(hd);
                for (int item = s; item < e; item++)
                {
                    int b = item / H, h = item % H, kvh = h / d.Group;
                    int i = 0;
                    if (block)
                        fixed (float* sc = scores)
                            for (; i + R <= Tq; i += R) Forward4(Q, K, V, O, L, b, h, kvh, i, d, scale, mask, sc);
                    for (; i < Tq; i++)
                    {
                        var qi = new ReadOnlySpan<float>(Q + (((long)b * Tq + i) * H + h) * hd, hd);
                        var oi = new Span<float>(O + (((long)b * Tq + i) * H + h) * hd, hd);
                        float rowLse = RowScores(qi, K, b, h, kvh, i, d, scale, mask, scores, out int j0, out int j1);
                        L[((long)b * H + h) * Tq + i] = rowLse;
                        oi.Clear();
                        if (float.IsNegativeInfinity(rowLse)) continue;
                        for (int j = j0; j <= j1; j++)
                        {
                            float p = scores[j];
                            if (p == 0f) continue;
                            TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(V + KvIndex(b, j, kvh, d), hd), p, oi, oi);
                        }
                    }
                }
                ArrayPool<float>.Shared.Return(scores);
            });
        }
    }

    /// <summary>
    /// dq, dk, dv += gradients of o (accumulate). Recomputes p_ij = exp(s_ij − lse_i); with D_i = do_i·o_i:
    /// ds_ij = p_ij (do_i·v_j − D_i); dq_i += scale Σ_j ds_ij k_j; dk_j += scale Σ_i ds_ij q_i; dv_j += Σ_i p_ij do_i.
    /// Work is split by (batch, kv head) so that dk/dv rows are written by one thread only.
    /// </summary>
    public static void Backward(ReadOnlySpan<float> dout, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, Span<float> dq, Span<float> dk, Span<float> dv,
        AttentionDims d, float scale, AttentionMask? mask = null) =>
        Backward(dout, q, k, v, o, lse, dq, dk, dv, d, scale, mask, AttentionPath.Auto);

    internal static void Backward(ReadOnlySpan<float> dout, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> o, ReadOnlySpan<float> lse, Span<float> dq, Span<float> dk, Span<float> dv,
        AttentionDims d, float scale, AttentionMask? mask, AttentionPath path)
    {
        mask ??= AttentionMask.CausalOnly;
        Check("Attention.Backward", q.Length, k.Length, v.Length, o.Length, lse.Length, d, mask);
        KernelChecks.Len("Attention.Backward", "dout", dout.Length, q.Length);
        KernelChecks.Len("Attention.Backward", "dq", dq.Length, (long)d.B * d.Tq * d.H * d.hd);
        KernelChecks.Len("Attention.Backward", "dk", dk.Length, (long)d.B * d.KvRows * d.KV * d.hd);
        KernelChecks.Len("Attention.Backward", "dv", dv.Length, (long)d.B * d.KvRows * d.KV * d.hd);
        int H = d.H, KV = d.KV, hd = d.hd, Tq = d.Tq, Tk = d.Tk;
        fixed (float* pdo = dout, pq = q, pk = k, pv = v, po = o, pl = lse, pdq = dq, pdk = dk, pdv = dv)
        {
            float* DO = pdo, Q = pq, K = pk, V = pv, O = po, L = pl, DQ = pdq, DK = pdk, DV = pdv;
            if (GemmApplies(d, path)) { BackwardGemm(DO, Q, K, V, O, L, DQ, DK, DV, d, scale, mask); return; }
            Parallel2.For(d.B * KV, (long)d.Group * Tq * Tk * hd * 5, (s, e) =>
            {
                var scores = ArrayPool<float>.Shared.Rent(R * Tk);
                bool block = path != AttentionPath.Row && Block4Applies(hd);
                for (int item = s; item < e; item++)
                {
                    int b = item / KV, kvh = item % KV;
                    for (int h = kvh * d.Group; h < (kvh + 1) * d.Group; h++)
                    {
                        int i = 0;
                        if (block)
                            fixed (float* sc = scores)
                                for (; i + R <= Tq; i += R) Backward4(DO, Q, K, V, O, L, DQ, DK, DV, b, h, kvh, i, d, scale, mask, sc);
                        for (; i < Tq; i++)
                        {
                            long qo = (((long)b * Tq + i) * H + h) * hd;
                            var qi = new ReadOnlySpan<float>(Q + qo, hd);
                            var doi = new ReadOnlySpan<float>(DO + qo, hd);
                            var dqi = new Span<float>(DQ + qo, hd);
                            float rowLse = L[((long)b * H + h) * Tq + i];
                            if (float.IsNegativeInfinity(rowLse)) continue;
                            RowScores(qi, K, b, h, kvh, i, d, scale, mask, scores, out int j0, out int j1, rowLse);
                            float Di = TensorPrimitives.Dot(doi, new ReadOnlySpan<float>(O + qo, hd));
                            for (int j = j0; j <= j1; j++)
                            {
                                float p = scores[j];
                                if (p == 0f) continue;
                                long ko = KvIndex(b, j, kvh, d);
                                var vj = new ReadOnlySpan<float>(V + ko, hd);
                                float ds = p * (TensorPrimitives.Dot(doi, vj) - Di) * scale;
                                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(K + ko, hd), ds, dqi, dqi);
                                var dkj = new Span<float>(DK + ko, hd);
                                TensorPrimitives.MultiplyAdd(qi, ds, dkj, dkj);
                                var dvj = new Span<float>(DV + ko, hd);
                                TensorPrimitives.MultiplyAdd(doi, p, dvj, dvj);
                            }
                        }
                    }
                }
                ArrayPool<float>.Shared.Return(scores);
            });
        }
    }

    /// <summary>
    /// Fills scores[j0..j1] with probabilities of row i (0 where masked) and returns its log-sum-exp.
    /// With knownLse (backward) the row max/sum pass is skipped: p = exp(s − lse).
    /// </summary>
    private static float RowScores(ReadOnlySpan<float> qi, float* K, int b, int h, int kvh, int i, AttentionDims d, float scale,
        AttentionMask mask, float[] scores, out int j0, out int j1, float knownLse = float.NaN)
    {
        int pos = d.QueryOffset + i;
        j0 = mask.Window > 0 ? Math.Max(0, pos - mask.Window + 1) : 0;
        j1 = mask.Causal ? pos : d.Tk - 1;
        bool biased = mask.HasBias;
        float max = float.NegativeInfinity;
        for (int j = j0; j <= j1; j++)
        {
            if (!mask.Allows(b, pos, j, d.Tk)) { scores[j] = float.NegativeInfinity; continue; }
            float sc = TensorPrimitives.Dot(qi, new ReadOnlySpan<float>(K + KvIndex(b, j, kvh, d), d.hd)) * scale;
            if (biased) sc += mask.BiasAt(b, h, i, j, d);
            scores[j] = sc;
            if (sc > max) max = sc;
        }
        if (!float.IsNaN(knownLse))
        {
            for (int j = j0; j <= j1; j++) scores[j] = MathF.Exp(scores[j] - knownLse);
            return knownLse;
        }
        if (float.IsNegativeInfinity(max)) return float.NegativeInfinity;
        float sum = 0;
        for (int j = j0; j <= j1; j++) { float p = MathF.Exp(scores[j] - max); scores[j] = p; sum += p; }
        float inv = 1f / sum;
        for (int j = j0; j <= j1; j++) scores[j] *= inv;
        return max + MathF.Log(sum);
    }

    private static long KvIndex(int b, int j, int kvh, AttentionDims d) => (((long)b * d.KvRows + j) * d.KV + kvh) * d.hd;

    /// <summary>The definition: full score rows in double precision (test oracle).</summary>
    public static void ForwardNaive(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> lse,
        AttentionDims d, float scale, AttentionMask? mask = null)
    {
        mask ??= AttentionMask.CausalOnly;
        var s = new double[d.Tk];
        for (int b = 0; b < d.B; b++)
            for (int h = 0; h < d.H; h++)
                for (int i = 0; i < d.Tq; i++)
                {
                    int kvh = h / d.Group, pos = d.QueryOffset + i;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < d.Tk; j++)
                    {
                        bool ok = (!mask.Causal || j <= pos) && (mask.Window == 0 || j > pos - mask.Window) && mask.Allows(b, pos, j, d.Tk);
                        if (!ok) { s[j] = double.NegativeInfinity; continue; }
                        double acc = 0;
                        for (int c = 0; c < d.hd; c++) acc += (double)q[(((b * d.Tq) + i) * d.H + h) * d.hd + c] * k[(int)KvIndex(b, j, kvh, d) + c];
                        s[j] = acc * scale + mask.BiasAt(b, h, i, j, d);
                        max = Math.Max(max, s[j]);
                    }
                    int oo = (((b * d.Tq) + i) * d.H + h) * d.hd;
                    if (double.IsNegativeInfinity(max))
                    {
                        for (int c = 0; c < d.hd; c++) o[oo + c] = 0;
                        lse[(b * d.H + h) * d.Tq + i] = float.NegativeInfinity;
                        continue;
                    }
                    double sum = 0;
                    for (int j = 0; j < d.Tk; j++) sum += Math.Exp(s[j] - max);
                    lse[(b * d.H + h) * d.Tq + i] = (float)(max + Math.Log(sum));
                    for (int c = 0; c < d.hd; c++)
                    {
                        double acc = 0;
                        for (int j = 0; j < d.Tk; j++) acc += Math.Exp(s[j] - max) / sum * v[(int)KvIndex(b, j, kvh, d) + c];
                        o[oo + c] = (float)acc;
                    }
                }
    }

    /// <summary>Backward by the textbook formulas with full probability rows in double precision (test oracle).</summary>
    public static void BackwardNaive(ReadOnlySpan<float> dout, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        Span<float> dq, Span<float> dk, Span<float> dv, AttentionDims d, float scale, AttentionMask? mask = null)
    {
        mask ??= AttentionMask.CausalOnly;
        var s = new double[d.Tk];
        var dp = new double[d.Tk];
        for (int b = 0; b < d.B; b++)
            for (int h = 0; h < d.H; h++)
                for (int i = 0; i < d.Tq; i++)
                {
                    int kvh = h / d.Group, pos = d.QueryOffset + i, qo = (((b * d.Tq) + i) * d.H + h) * d.hd;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < d.Tk; j++)
                    {
                        if (!mask.Allows(b, pos, j, d.Tk) || (mask.Window > 0 && j <= pos - mask.Window)) { s[j] = double.NegativeInfinity; continue; }
                        double acc = 0;
                        for (int c = 0; c < d.hd; c++) acc += (double)q[qo + c] * k[(int)KvIndex(b, j, kvh, d) + c];
                        s[j] = acc * scale + mask.BiasAt(b, h, i, j, d);
                        max = Math.Max(max, s[j]);
                    }
                    if (double.IsNegativeInfinity(max)) continue;
                    double sum = 0;
                    for (int j = 0; j < d.Tk; j++) sum += Math.Exp(s[j] - max);
                    double dot = 0;
                    for (int j = 0; j < d.Tk; j++)
                    {
                        double p = Math.Exp(s[j] - max) / sum, a = 0;
                        for (int c = 0; c < d.hd; c++) a += (double)dout[qo + c] * v[(int)KvIndex(b, j, kvh, d) + c];
                        dp[j] = a; dot += p * a; s[j] = p;
                    }
                    for (int j = 0; j < d.Tk; j++)
                    {
                        double ds = s[j] * (dp[j] - dot) * scale;
                        int ko = (int)KvIndex(b, j, kvh, d);
                        for (int c = 0; c < d.hd; c++)
                        {
                            dq[qo + c] += (float)(ds * k[ko + c]);
                            dk[ko + c] += (float)(ds * q[qo + c]);
                            dv[ko + c] += (float)(s[j] * dout[qo + c]);
                        }
                    }
                }
    }

    private static void Check(string kn, int qLen, int kLen, int vLen, int oLen, int lseLen, AttentionDims d, AttentionMask mask)
    {
        d.Validate(kn);
        long qn = (long)d.B * d.Tq * d.H * d.hd, kvn = ((long)(d.B - 1) * d.KvRows + d.Tk) * d.KV * d.hd;
        KernelChecks.Len(kn, "q", qLen, qn);
        KernelChecks.Len(kn, "k", kLen, kvn);
        KernelChecks.Len(kn, "v", vLen, kvn);
        KernelChecks.Len(kn, "o", oLen, qn);
        KernelChecks.Len(kn, "lse", lseLen, (long)d.B * d.H * d.Tq);
        mask.Validate(kn, d);
    }
}
