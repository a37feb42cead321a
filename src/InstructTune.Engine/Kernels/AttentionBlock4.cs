// The register-blocked path of AttentionKernel: four consecutive query rows of one head at a time, so each key
// and value row is loaded once for four queries (and dk/dv rows are read-modified-written once per four queries
// in backward). Needs AVX2/FMA and hd % 8 == 0; otherwise, and for the last Tq % 4 rows, the row path serves.
// Same results as the row path up to float summation order.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace InstructTune.Engine.Kernels;

public static unsafe partial class AttentionKernel
{
    private const int R = 4;

    /// <summary>Whether the 4-row path serves this head size on this CPU.</summary>
    internal static bool Block4Applies(int hd) => UseBlock4 && Fma.IsSupported && Avx.IsSupported && hd % 8 == 0;

    /// <summary>Switch for benchmarks and tests: false forces the row path everywhere.</summary>
    public static bool UseBlock4 { get; set; } = true;

    /// <summary>
    /// s[r·Tk + j] = scale·q_r·k_j + bias for the 4 rows starting at i0 and j in [jLo, jHi] (−∞ where masked);
    /// returns (jLo, jHi), the union of the rows' key ranges.
    /// </summary>
    private static (int Lo, int Hi) Scores4(float* Q, float* K, int b, int h, int kvh, int i0, AttentionDims d, float scale, AttentionMask mask, float* s)
    {
        int Tk = d.Tk, hd = d.hd, pos0 = d.QueryOffset + i0;
        long qs = (long)d.H * hd;
        float* q0 = Q + (((long)b * d.Tq + i0) * d.H + h) * hd;
        int lo = mask.Window > 0 ? Math.Max(0, pos0 - mask.Window + 1) : 0;
        int hi = mask.Causal ? pos0 + R - 1 : Tk - 1;
        // Keys in [openLo, openHi] pass the causal and window tests for all four rows; without padding or bias,
        // and with the four rows in one packed document (or no documents), only that document's keys remain to
        // check, one compare per key instead of a full mask test per element.
        int openLo = int.MaxValue, openHi = int.MinValue, doc = 0;
        int[]? docs = mask.DocIds;
        int docBase = b * Tk;
        if (mask.KeyValid == null && !mask.HasBias && OneDocument(docs, docBase + pos0, out doc))
        {
            openLo = mask.Window > 0 ? Math.Max(lo, pos0 + R - mask.Window) : lo;
            openHi = mask.Causal ? pos0 : hi;
        }
        for (int j = lo; j <= hi; j++)
        {
            if (j >= openLo && j <= openHi)
            {
                if (docs != null && docs[docBase + j] != doc)
                {
                    s[j] = s[Tk + j] = s[2 * Tk + j] = s[3 * Tk + j] = float.NegativeInfinity;
                    continue;
                }
                var (u0, u1, u2, u3) = Dot4(q0, qs, K + KvIndex(b, j, kvh, d), hd);
                s[j] = u0 * scale; s[Tk + j] = u1 * scale; s[2 * Tk + j] = u2 * scale; s[3 * Tk + j] = u3 * scale;
                continue;
            }
            var (a0, a1, a2, a3) = Dot4(q0, qs, K + KvIndex(b, j, kvh, d), hd);
            s[j] = Masked(a0 * scale, 0);
            s[Tk + j] = Masked(a1 * scale, 1);
            s[2 * Tk + j] = Masked(a2 * scale, 2);
            s[3 * Tk + j] = Masked(a3 * scale, 3);

            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            float Masked(float v, int r)
            {
                if (!mask.Allows(b, pos0 + r, j, Tk)) return float.NegativeInfinity;
                return mask.HasBias ? v + mask.BiasAt(b, h, i0 + r, j, d) : v;
            }
        }
        return (lo, hi);
    }

    /// <summary>True when there are no document ids, or rows at..at+3 all carry the same one (returned).</summary>
    private static bool OneDocument(int[]? docIds, int at, out int doc)
    {
        doc = 0;
        if (docIds == null) return true;
        doc = docIds[at];
        return docIds[at + 1] == doc && docIds[at + 2] == doc && docIds[at + 3] == doc;
    }

    /// <summary>(x_r · y) for the four rows x_r = x0 + r·stride (length hd, a multiple of 8): y is loaded once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (float, float, float, float) Dot4(float* x0, long stride, float* y, int hd)
    {
        float* x1 = x0 + stride, x2 = x1 + stride, x3 = x2 + stride;
        Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < hd; c += 8)
        {
            var yv = Avx.LoadVector256(y + c);
            a0 = Fma.MultiplyAdd(Avx.LoadVector256(x0 + c), yv, a0);
            a1 = Fma.MultiplyAdd(Avx.LoadVector256(x1 + c), yv, a1);
            a2 = Fma.MultiplyAdd(Avx.LoadVector256(x2 + c), yv, a2);
            a3 = Fma.MultiplyAdd(Avx.LoadVector256(x3 + c), yv, a3);
        }
        var sums = VectorMath.Sum4(a0, a1, a2, a3);
        return (sums.GetElement(0), sums.GetElement(1), sums.GetElement(2), sums.GetElement(3));
    }

    /// <summary>Forward of 4 rows: softmax per row over [lo, hi], o_r = Σ_j p_rj v_j, lse_r.</summary>
    private static void Forward4(float* Q, float* K, float* V, float* O, float* L, int b, int h, int kvh, int i0,
        AttentionDims d, float scale, AttentionMask mask, float* s)
    {
        int Tk = d.Tk, hd = d.hd;
        var (lo, hi) = Scores4(Q, K, b, h, kvh, i0, d, scale, mask, s);
        int n = hi - lo + 1;
        for (int r = 0; r < R; r++)
        {
            var row = new Span<float>(s + r * Tk + lo, n);
            float max = TensorPrimitives.Max(row);
            float* lrow = L + ((long)b * d.H + h) * d.Tq + i0 + r;
            if (float.IsNegativeInfinity(max)) { row.Clear(); *lrow = float.NegativeInfinity; continue; }
            TensorPrimitives.Subtract(row, max, row);
            VectorMath.Exp(row, row);
            float sum = TensorPrimitives.Sum(row);
            TensorPrimitives.Multiply(row, 1f / sum, row);
            *lrow = max + MathF.Log(sum);
        }
        long qs = (long)d.H * hd;
        float* o0 = O + (((long)b * d.Tq + i0) * d.H + h) * hd, o1 = o0 + qs, o2 = o1 + qs, o3 = o2 + qs;
        // o_r = Σ_j p_rj v_j, 16 columns at a time: the 4×16 outputs stay in 8 registers while the keys stream
        // past, instead of a load and a store of every output per key.
        int c = 0;
        for (; c + 16 <= hd; c += 16)
        {
            Vector256<float> x0 = default, y0 = default, x1 = default, y1 = default, x2 = default, y2 = default, x3 = default, y3 = default;
            for (int j = lo; j <= hi; j++)
            {
                float p0 = s[j], p1 = s[Tk + j], p2 = s[2 * Tk + j], p3 = s[3 * Tk + j];
                if (p0 == 0f && p1 == 0f && p2 == 0f && p3 == 0f) continue;   // masked for all four rows
                float* vr = V + KvIndex(b, j, kvh, d) + c;
                var va = Avx.LoadVector256(vr); var vb = Avx.LoadVector256(vr + 8);
                var w = Vector256.Create(p0); x0 = Fma.MultiplyAdd(w, va, x0); y0 = Fma.MultiplyAdd(w, vb, y0);
                w = Vector256.Create(p1); x1 = Fma.MultiplyAdd(w, va, x1); y1 = Fma.MultiplyAdd(w, vb, y1);
                w = Vector256.Create(p2); x2 = Fma.MultiplyAdd(w, va, x2); y2 = Fma.MultiplyAdd(w, vb, y2);
                w = Vector256.Create(p3); x3 = Fma.MultiplyAdd(w, va, x3); y3 = Fma.MultiplyAdd(w, vb, y3);
            }
            Avx.Store(o0 + c, x0); Avx.Store(o0 + c + 8, y0); Avx.Store(o1 + c, x1); Avx.Store(o1 + c + 8, y1);
            Avx.Store(o2 + c, x2); Avx.Store(o2 + c + 8, y2); Avx.Store(o3 + c, x3); Avx.Store(o3 + c + 8, y3);
        }
        if (c < hd) // hd % 16 == 8: the last 8 columns
        {
            Vector256<float> x0 = default, x1 = default, x2 = default, x3 = default;
            for (int j = lo; j <= hi; j++)
            {
                float p0 = s[j], p1 = s[Tk + j], p2 = s[2 * Tk + j], p3 = s[3 * Tk + j];
                if (p0 == 0f && p1 == 0f && p2 == 0f && p3 == 0f) continue;
                var va = Avx.LoadVector256(V + KvIndex(b, j, kvh, d) + c);
                x0 = Fma.MultiplyAdd(Vector256.Create(p0), va, x0); x1 = Fma.MultiplyAdd(Vector256.Create(p1), va, x1);
                x2 = Fma.MultiplyAdd(Vector256.Create(p2), va, x2); x3 = Fma.MultiplyAdd(Vector256.Create(p3), va, x3);
            }
            Avx.Store(o0 + c, x0); Avx.Store(o1 + c, x1); Avx.Store(o2 + c, x2); Avx.Store(o3 + c, x3);
        }
    }

    /// <summary>Backward of 4 rows (see Backward): recompute p from lse, then dq_r, dk_j, dv_j += in one sweep over keys.</summary>
    private static void Backward4(float* DO, float* Q, float* K, float* V, float* O, float* L, float* DQ, float* DK, float* DV,
        int b, int h, int kvh, int i0, AttentionDims d, float scale, AttentionMask mask, float* s)
    {
        int Tk = d.Tk, hd = d.hd;
        var (lo, hi) = Scores4(Q, K, b, h, kvh, i0, d, scale, mask, s);
        int n = hi - lo + 1;
        long qs = (long)d.H * hd, first = (((long)b * d.Tq + i0) * d.H + h) * hd;
        float* q0 = Q + first, q1 = q0 + qs, q2 = q1 + qs, q3 = q2 + qs;
        float* g0 = DO + first, g1 = g0 + qs, g2 = g1 + qs, g3 = g2 + qs;
        float* dq0 = DQ + first, dq1 = dq0 + qs, dq2 = dq1 + qs, dq3 = dq2 + qs;
        Span<float> D = stackalloc float[R];
        for (int r = 0; r < R; r++)
        {
            var row = new Span<float>(s + r * Tk + lo, n);
            float lse = L[((long)b * d.H + h) * d.Tq + i0 + r];
            if (float.IsNegativeInfinity(lse)) { row.Clear(); D[r] = 0; continue; }
            TensorPrimitives.Subtract(row, lse, row);
            VectorMath.Exp(row, row);                                  // p = exp(s − lse)
            D[r] = TensorPrimitives.Dot(new ReadOnlySpan<float>(DO + first + r * qs, hd), new ReadOnlySpan<float>(O + first + r * qs, hd));
        }
        float D0 = D[0], D1 = D[1], D2 = D[2], D3 = D[3];
        for (int j = lo; j <= hi; j++)
        {
            float p0 = s[j], p1 = s[Tk + j], p2 = s[2 * Tk + j], p3 = s[3 * Tk + j];
            if (p0 == 0f && p1 == 0f && p2 == 0f && p3 == 0f) continue;
            long ko = KvIndex(b, j, kvh, d);
            float* kr = K + ko, vr = V + ko, dk = DK + ko, dv = DV + ko;
            var (a0, a1, a2, a3) = Dot4(g0, qs, vr, hd);                                     // dp_r = do_r · v_j
            // ds_r = p_r (dp_r − D_r)·scale
            var s0 = Vector256.Create(p0 * (a0 - D0) * scale);
            var s1 = Vector256.Create(p1 * (a1 - D1) * scale);
            var s2 = Vector256.Create(p2 * (a2 - D2) * scale);
            var s3 = Vector256.Create(p3 * (a3 - D3) * scale);
            Vector256<float> P0 = Vector256.Create(p0), P1 = Vector256.Create(p1), P2 = Vector256.Create(p2), P3 = Vector256.Create(p3);
            for (int c = 0; c < hd; c += 8)
            {
                var kk = Avx.LoadVector256(kr + c);
                Avx.Store(dq0 + c, Fma.MultiplyAdd(s0, kk, Avx.LoadVector256(dq0 + c)));   // dq_r += ds_r k_j
                Avx.Store(dq1 + c, Fma.MultiplyAdd(s1, kk, Avx.LoadVector256(dq1 + c)));
                Avx.Store(dq2 + c, Fma.MultiplyAdd(s2, kk, Avx.LoadVector256(dq2 + c)));
                Avx.Store(dq3 + c, Fma.MultiplyAdd(s3, kk, Avx.LoadVector256(dq3 + c)));
                var dkv = Avx.LoadVector256(dk + c);                                           // dk_j += Σ_r ds_r q_r
                dkv = Fma.MultiplyAdd(s0, Avx.LoadVector256(q0 + c), dkv);
                dkv = Fma.MultiplyAdd(s1, Avx.LoadVector256(q1 + c), dkv);
                dkv = Fma.MultiplyAdd(s2, Avx.LoadVector256(q2 + c), dkv);
                Avx.Store(dk + c, Fma.MultiplyAdd(s3, Avx.LoadVector256(q3 + c), dkv));
                var dvv = Avx.LoadVector256(dv + c);                                           // dv_j += Σ_r p_r do_r
                dvv = Fma.MultiplyAdd(P0, Avx.LoadVector256(g0 + c), dvv);
                dvv = Fma.MultiplyAdd(P1, Avx.LoadVector256(g1 + c), dvv);
                dvv = Fma.MultiplyAdd(P2, Avx.LoadVector256(g2 + c), dvv);
                Avx.Store(dv + c, Fma.MultiplyAdd(P3, Avx.LoadVector256(g3 + c), dvv));
            }
        }
    }
}
