// Causal grouped-query attention of new tokens over a sequence's KV cache, one query row at a time
// (no T×T score matrix): the inference path's attention (InferenceModel's decoder layer calls Step; training uses
// AttentionKernel). Query head h reads kv head h / (nH / nKv). With a sliding window W, the query at
// cache index i sees keys j with i − W < j ≤ i (Mistral's convention). A cache layer holds K and V as
// [nKv, Capacity, hd] (kv head major), so one head's rows are contiguous.
using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
namespace InstructTune.Engine.Kernels;

public static class CachedAttention
{
    /// <summary>
    /// out[hd] = softmax_j(q·K[j] / √hd) · V[j] over j in [lo, i], where K, V are the kv head's rows
    /// [Capacity, hd] and i is the query's cache index. scores must hold at least i + 1 floats.
    /// </summary>
    /// With <paramref name="keyBias"/> ≠ 0 (instruction-biased attention), keys j with keyFlags[j] ≠ 0 score
    /// q·K[j] / √hd + keyBias; a zero bias takes the unbiased path (adding 0 is exact).
    public static void Row(ReadOnlySpan<float> q, ReadOnlySpan<float> K, ReadOnlySpan<float> V, int hd,
        int i, int window, Span<float> scores, Span<float> output, ReadOnlySpan<byte> keyFlags = default, float keyBias = 0f)
    {
        int lo = window > 0 ? Math.Max(0, i - window + 1) : 0;
        int n = i - lo + 1;
        var s = scores[..n];
        float scale = 1f / MathF.Sqrt(hd);
        bool fast = Avx2.IsSupported && Fma.IsSupported && hd % 8 == 0;
        if (fast) Scores(q, K.Slice(lo * hd, n * hd), hd, s);
        else for (int j = 0; j < n; j++) s[j] = TensorPrimitives.Dot(q, K.Slice((lo + j) * hd, hd));
        if (keyBias != 0f)
        {
            // softmax(s·scale + β·f): the biased scores, then exp(s − max).
            TensorPrimitives.Multiply(s, scale, s);
            for (int j = 0; j < n; j++) if (keyFlags[lo + j] != 0) s[j] += keyBias;
            TensorPrimitives.Subtract(s, TensorPrimitives.Max(s), s);
        }
        else
        {
            // softmax(s·scale): exp((s − max)·scale), normalised after the weighted sum.
            float max = TensorPrimitives.Max(s);
            TensorPrimitives.Multiply(s, scale, s);
            TensorPrimitives.Subtract(s, max * scale, s);
        }
        VectorMath.Exp(s, s);
        float inv = 1f / TensorPrimitives.Sum(s);
        if (fast) WeightedSum(s, V.Slice(lo * hd, n * hd), hd, output);
        else
        {
            output.Clear();
            for (int j = 0; j < n; j++) TensorPrimitives.MultiplyAdd(V.Slice((lo + j) * hd, hd), s[j], output, output);
        }
        TensorPrimitives.Multiply(output, inv, output);
    }

    /// <summary>s[j] = q·K[j] for the n rows of K (hd a multiple of 8): four keys per pass share each q load,
    /// and their four sums are reduced together, so a short head costs no call per key.</summary>
    private static unsafe void Scores(ReadOnlySpan<float> q, ReadOnlySpan<float> K, int hd, Span<float> s)
    {
        int n = s.Length;
        fixed (float* qp = q, kp = K, sp = s)
        {
            int j = 0;
            for (; j + 4 <= n; j += 4)
            {
                float* k0 = kp + (nint)j * hd, k1 = k0 + hd, k2 = k1 + hd, k3 = k2 + hd;
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int c = 0; c < hd; c += 8)
                {
                    var qv = Avx.LoadVector256(qp + c);
                    a0 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k0 + c), a0);
                    a1 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k1 + c), a1);
                    a2 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k2 + c), a2);
                    a3 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k3 + c), a3);
                }
                Sse.Store(sp + j, VectorMath.Sum4(a0, a1, a2, a3));
            }
            for (; j < n; j++)
            {
                float* kj = kp + (nint)j * hd;
                var a = Vector256<float>.Zero;
                for (int c = 0; c < hd; c += 8) a = Fma.MultiplyAdd(Avx.LoadVector256(qp + c), Avx.LoadVector256(kj + c), a);
                sp[j] = Vector256.Sum(a);
            }
        }
    }

    /// <summary>output = Σ_j p[j]·V[j] (hd a multiple of 8): up to 64 output values stay in registers while all
    /// n rows stream past, then the next 64.</summary>
    private static unsafe void WeightedSum(ReadOnlySpan<float> p, ReadOnlySpan<float> V, int hd, Span<float> output)
    {
        int n = p.Length;
        fixed (float* pp = p, vp = V, op = output)
        {
            int c = 0;
            for (; c + 64 <= hd; c += 64)
            {
                Vector256<float> o0 = default, o1 = default, o2 = default, o3 = default, o4 = default, o5 = default, o6 = default, o7 = default;
                float* v = vp + c;
                for (int j = 0; j < n; j++, v += hd)
                {
                    var w = Vector256.Create(pp[j]);
                    o0 = Fma.MultiplyAdd(w, Avx.LoadVector256(v), o0); o1 = Fma.MultiplyAdd(w, Avx.LoadVector256(v + 8), o1);
                    o2 = Fma.MultiplyAdd(w, Avx.LoadVector256(v + 16), o2); o3 = Fma.MultiplyAdd(w, Avx.LoadVector256(v + 24), o3);
                    o4 = Fma.MultiplyAdd(w, Avx.LoadVector256(v + 32), o4); o5 = Fma.MultiplyAdd(w, Avx.LoadVector256(v + 40), o5);
                    o6 = Fma.MultiplyAdd(w, Avx.LoadVector256(v + 48), o6); o7 = Fma.MultiplyAdd(w, Avx.LoadVector256(v + 56), o7);
                }
                float* o = op + c;
                Avx.Store(o, o0); Avx.Store(o + 8, o1); Avx.Store(o + 16, o2); Avx.Store(o + 24, o3);
                Avx.Store(o + 32, o4); Avx.Store(o + 40, o5); Avx.Store(o + 48, o6); Avx.Store(o + 56, o7);
            }
            for (; c < hd; c += 8)
            {
                var acc = Vector256<float>.Zero;
                float* v = vp + c;
                for (int j = 0; j < n; j++, v += hd) acc = Fma.MultiplyAdd(Vector256.Create(pp[j]), Avx.LoadVector256(v), acc);
                Avx.Store(op + c, acc);
            }
        }
    }

    /// <summary>The definition in double precision: scores, softmax and weighted sum over the same key range.</summary>
    public static void RowNaive(ReadOnlySpan<float> q, ReadOnlySpan<float> K, ReadOnlySpan<float> V, int hd,
        int i, int window, Span<float> output, ReadOnlySpan<byte> keyFlags = default, float keyBias = 0f)
    {
        var p = new double[i + 1];
        double max = double.NegativeInfinity;
        for (int j = 0; j <= i; j++)
        {
            if (window > 0 && j <= i - window) { p[j] = double.NegativeInfinity; continue; }
            double d = 0;
            for (int k = 0; k < hd; k++) d += (double)q[k] * K[j * hd + k];
            p[j] = d / Math.Sqrt(hd) + (keyBias != 0f && keyFlags[j] != 0 ? keyBias : 0.0);
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

    /// <summary>One sequence's cache at one layer: K and V [nKv, Capacity, hd]; InstructionKeys (Capacity) flags
    /// the rows holding instruction tokens, read only when Step is given a head bias.</summary>
    public readonly record struct KvLayer(float[] K, float[] V, int Capacity, byte[]? InstructionKeys = null);

    /// <summary>Runs <see cref="Row"/> for every (query, head) pair of a step, split across cores when worth it.
    /// Q rows are [N, nH·hd]; output rows likewise. For query n: its cache layer kv[n], cache index index[n]
    /// (keys 0..index[n] must be written), and the window.
    /// <paramref name="headBias"/> (nH): instruction-biased attention's β of this layer over kv[n].InstructionKeys.</summary>
    public static void Step(float[] Q, float[] Out, int N, int nH, int nKv, int hd, KvLayer[] kv, int[] index, int window,
        float[]? headBias = null)
    {
        if (nKv <= 0 || nH % nKv != 0) throw new ArgumentException($"CachedAttention.Step: {nH} query heads are not a multiple of {nKv} kv heads");
        KernelChecks.Len("CachedAttention.Step", "Q", Q.Length, (long)N * nH * hd);
        KernelChecks.Len("CachedAttention.Step", "Out", Out.Length, (long)N * nH * hd);
        KernelChecks.Len("CachedAttention.Step", "kv", kv.Length, N);
        KernelChecks.Len("CachedAttention.Step", "index", index.Length, N);
        if (headBias != null) KernelChecks.Len("CachedAttention.Step", "headBias", headBias.Length, nH);
        int group = nH / nKv;
        int work = N * nH;
        void Run(int w)
        {
            int n = w / nH, h = w % nH, kvh = h / group;
            var cache = kv[n];
            int cap = cache.Capacity;
            var scores = ArrayPool<float>.Shared.Rent(index[n] + 1);
            Row(Q.AsSpan((n * nH + h) * hd, hd), cache.K.AsSpan(kvh * cap * hd, cap * hd),
                cache.V.AsSpan(kvh * cap * hd, cap * hd), hd, index[n], window, scores, Out.AsSpan((n * nH + h) * hd, hd),
                headBias == null ? default : cache.InstructionKeys, headBias?[h] ?? 0f);
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
