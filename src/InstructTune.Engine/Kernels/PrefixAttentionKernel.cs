// Attention of every query row over a small set of P keys/values that belong to its own sequence (document), with
// its own softmax: IAPT's per-example soft prompts (instruction-aware prompt tuning) enter each layer this way, as
// a zero-gated second attention term beside the ordinary causal one (LLaMA-Adapter's "zero-init attention").
//
//   q, o (N, H, hd)   k, v (docs·P, KV, hd)   doc (N): the document of query row n, −1 = none (o_n = 0)
//   query head h reads kv head h / (H / KV); no mask, no rotation of k (the prompts have no position).
//   s_np = scale·q_n·k_(doc n, p)   a_n = softmax_p(s_n)   o_n = Σ_p a_np·v_(doc n, p)
// Forward saves a (N, H, P) for backward:
//   dv_p += a_p·do;  da_p = do·v_p;  ds_p = a_p·(da_p − Σ_p' a_p'·da_p');  dq += scale·Σ_p ds_p·k_p;  dk_p += scale·ds_p·q.
// P is small (IAPT uses 4), so the loops are plain; the inference path calls the same Forward one row at a time.
using System.Numerics.Tensors;

namespace InstructTune.Engine.Kernels;

public static class PrefixAttentionKernel
{
    /// <summary>o (N·H·hd) = per-row attention over its document's P keys; probs (N·H·P) saved for backward.
    /// No aliasing between outputs and inputs. Throws on a too-short buffer or a document outside [−1, docs).</summary>
    public static void Forward(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, Span<float> o, Span<float> probs,
        ReadOnlySpan<int> doc, int N, int P, int H, int KV, int hd, float scale)
    {
        Check("PrefixAttention.Forward", q.Length, k.Length, v.Length, o.Length, probs.Length, doc, N, P, H, KV, hd);
        int G = H / KV;
        for (int n = 0; n < N; n++)
            for (int h = 0; h < H; h++)
            {
                var on = o.Slice((n * H + h) * hd, hd);
                var a = probs.Slice((n * H + h) * P, P);
                if (doc[n] < 0) { on.Clear(); a.Clear(); continue; }
                var qn = q.Slice((n * H + h) * hd, hd);
                for (int p = 0; p < P; p++) a[p] = scale * TensorPrimitives.Dot(qn, k.Slice(KRow(doc[n], p, h / G, P, KV, hd), hd));
                float max = TensorPrimitives.Max(a), sum = 0;                  // subtract the row max
                for (int p = 0; p < P; p++) sum += a[p] = MathF.Exp(a[p] - max);
                TensorPrimitives.Divide(a, sum, a);
                on.Clear();
                for (int p = 0; p < P; p++) TensorPrimitives.MultiplyAdd(v.Slice(KRow(doc[n], p, h / G, P, KV, hd), hd), a[p], on, on);
            }
    }

    /// <summary>Accumulates dq (N·H·hd), dk, dv (docs·P·KV·hd) from dout and the forward's probs; a null-length
    /// (empty) gradient span skips that input.</summary>
    public static void Backward(ReadOnlySpan<float> dout, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<float> probs, ReadOnlySpan<int> doc, Span<float> dq, Span<float> dk, Span<float> dv,
        int N, int P, int H, int KV, int hd, float scale)
    {
        Check("PrefixAttention.Backward", q.Length, k.Length, v.Length, dout.Length, probs.Length, doc, N, P, H, KV, hd);
        int G = H / KV;
        Span<float> ds = stackalloc float[P];
        for (int n = 0; n < N; n++)
        {
            if (doc[n] < 0) continue;
            for (int h = 0; h < H; h++)
            {
                var don = dout.Slice((n * H + h) * hd, hd);
                var a = probs.Slice((n * H + h) * P, P);
                float dot = 0;
                for (int p = 0; p < P; p++)
                {
                    int r = KRow(doc[n], p, h / G, P, KV, hd);
                    ds[p] = TensorPrimitives.Dot(don, v.Slice(r, hd));          // da_p = do·v_p
                    dot += a[p] * ds[p];
                    if (!dv.IsEmpty) TensorPrimitives.MultiplyAdd(don, a[p], dv.Slice(r, hd), dv.Slice(r, hd));   // dv_p += a_p·do
                }
                var qn = q.Slice((n * H + h) * hd, hd);
                for (int p = 0; p < P; p++)
                {
                    float g = scale * a[p] * (ds[p] - dot);                     // scale·ds_p
                    int r = KRow(doc[n], p, h / G, P, KV, hd);
                    if (!dq.IsEmpty) TensorPrimitives.MultiplyAdd(k.Slice(r, hd), g, dq.Slice((n * H + h) * hd, hd), dq.Slice((n * H + h) * hd, hd));
                    if (!dk.IsEmpty) TensorPrimitives.MultiplyAdd(qn, g, dk.Slice(r, hd), dk.Slice(r, hd));
                }
            }
        }
    }

    /// <summary>The offset of key/value row (document d, prompt p, kv head g) in a (docs·P, KV, hd) buffer.</summary>
    private static int KRow(int d, int p, int g, int P, int KV, int hd) => ((d * P + p) * KV + g) * hd;

    private static void Check(string k, int q, int kl, int vl, int o, int probs, ReadOnlySpan<int> doc, int N, int P, int H, int KV, int hd)
    {
        if (N < 0 || P <= 0 || H <= 0 || KV <= 0 || hd <= 0 || H % KV != 0) throw new ArgumentException($"{k}: bad sizes N={N} P={P} H={H} KV={KV} hd={hd}");
        KernelChecks.Len(k, "q", q, (long)N * H * hd);
        KernelChecks.Len(k, "out", o, (long)N * H * hd);
        KernelChecks.Len(k, "probs", probs, (long)N * H * P);
        KernelChecks.Len(k, "doc", doc.Length, N);
        if (kl != vl || kl % (P * KV * hd) != 0) throw new ArgumentException($"{k}: k ({kl}) and v ({vl}) must both hold docs·{P}·{KV}·{hd} values");
        int docs = kl / (P * KV * hd);
        for (int n = 0; n < N; n++)
            if (doc[n] < -1 || doc[n] >= docs) throw new ArgumentException($"{k}: row {n} names document {doc[n]} outside [−1, {docs})");
    }
}
