// Causal grouped-query attention of new tokens over a sequence's KV cache, one query row at a time
// (no T×T score matrix). Query head h reads kv head h / (nH / nKv). With a sliding window W, the query at
// cache index i sees keys j with i − W < j ≤ i (Mistral's convention).
using System.Buffers;
using System.Numerics.Tensors;
using InstructTune.Engine.Kernels;

namespace InstructTune.Models.Inference;

public static class CachedAttention
{
    /// <summary>
    /// out[hd] = softmax_j(q·K[j] / √hd) · V[j] over j in [lo, i], where K, V are the kv head's rows
    /// [Capacity, hd] and i is the query's cache index. scores must hold at least i + 1 floats.
    /// </summary>
    public static void Row(ReadOnlySpan<float> q, ReadOnlySpan<float> K, ReadOnlySpan<float> V, int hd,
        int i, int window, Span<float> scores, Span<float> output)
    {
        int lo = window > 0 ? Math.Max(0, i - window + 1) : 0;
        int n = i - lo + 1;
        var s = scores[..n];
        float scale = 1f / MathF.Sqrt(hd);
        for (int j = 0; j < n; j++) s[j] = TensorPrimitives.Dot(q, K.Slice((lo + j) * hd, hd)) * scale;
        float max = TensorPrimitives.Max(s);
        float sum = 0;
        for (int j = 0; j < n; j++) { s[j] = MathF.Exp(s[j] - max); sum += s[j]; }
        float inv = 1f / sum;
        output.Clear();
        for (int j = 0; j < n; j++) TensorPrimitives.MultiplyAdd(V.Slice((lo + j) * hd, hd), s[j] * inv, output, output);
    }

    /// <summary>The definition in double precision: scores, softmax and weighted sum over the same key range.</summary>
    public static void RowNaive(ReadOnlySpan<float> q, ReadOnlySpan<float> K, ReadOnlySpan<float> V, int hd,
        int i, int window, Span<float> output)
    {
        var p = new double[i + 1];
        double max = double.NegativeInfinity;
        for (int j = 0; j <= i; j++)
        {
            if (window > 0 && j <= i - window) { p[j] = double.NegativeInfinity; continue; }
            double d = 0;
            for (int k = 0; k < hd; k++) d += (double)q[k] * K[j * hd + k];
            p[j] = d / Math.Sqrt(hd);
            max = Math.Max(max, p[j]);
        }
        double sum = 0;
        for (int j = 0; j <= i; j++) { p[j] = Math.Exp(p[j] - max); sum += p[j]; }
        for (int k = 0; k < hd; k++)
        {
            double acc = 0;
            for (int j = 0; j <= i; j++) acc += p[j] / sum * V[j * hd + k];
            output[k] = (float)acc;
        }
    }

    /// <summary>Runs <see cref="Row"/> for every (query, head) pair of a step, split across cores when worth it.
    /// Q rows are [N, nH·hd]; output rows likewise. For query n: its cache, cache index and window.</summary>
    public static void Step(float[] Q, float[] Out, int N, int nH, int nKv, int hd, int layer,
        KvCache[] caches, int[] index, int window)
    {
        int group = nH / nKv;
        int work = N * nH;
        void Run(int w)
        {
            int n = w / nH, h = w % nH, kvh = h / group;
            var cache = caches[n];
            int cap = cache.Capacity;
            var scores = ArrayPool<float>.Shared.Rent(index[n] + 1);
            Row(Q.AsSpan((n * nH + h) * hd, hd), cache.K[layer].AsSpan(kvh * cap * hd, cap * hd),
                cache.V[layer].AsSpan(kvh * cap * hd, cap * hd), hd, index[n], window, scores, Out.AsSpan((n * nH + h) * hd, hd));
            ArrayPool<float>.Shared.Return(scores);
        }
        long cost = 0;
        for (int n = 0; n < N; n++) cost += (long)(index[n] + 1) * nH * hd;
        if (cost < 1 << 15 || work == 1 || Parallel2.Threads == 1) { for (int w = 0; w < work; w++) Run(w); }
        else
        {
            // Strided split on the kernels' worker team: causal rows grow with the cache index, so taking every
            // parts-th (query, head) pair balances the cores; thread-pool workers left spinning after a
            // Parallel.For would also compete with the GEMM threads that run next.
            int parts = Math.Min(Parallel2.Threads, work);
            Parallel2.RunParts(parts, p => { for (int w = p; w < work; w += parts) Run(w); });
        }
    }
}
