// The inference path's kernels (attention over a KV cache, the scorer's log-softmax, RoPE and RMSNorm as the decoder
// layer calls them) against their naive twins and hand-worked values.
using InstructTune.Engine.Kernels;
using static InstructTune.Engine.Tests.TestUtil;

namespace InstructTune.Engine.Tests.Kernels;

public class CachedAttentionTests
{
    [Theory]
    [InlineData(0, 8, 0)]
    [InlineData(5, 16, 0)]
    [InlineData(12, 16, 5)]
    [InlineData(63, 24, 7)]
    [InlineData(64, 64, 1)]
    [InlineData(301, 64, 0)]    // many 4-key blocks and a remainder of 2
    [InlineData(130, 128, 50)]  // two 64-wide output blocks, window
    [InlineData(33, 80, 0)]     // one 64-wide block and two 8-wide chunks
    [InlineData(17, 12, 0)]     // head width not a multiple of 8: the portable path
    public void Row_matches_naive(int i, int hd, int window)
    {
        int cap = i + 3;
        ulong seed = (ulong)(i * 1000 + hd * 10 + window);
        var q = Rand(hd, seed, 3); var K = Rand(cap * hd, seed + 1, 3); var V = Rand(cap * hd, seed + 2);
        var o = new float[hd]; var on = new float[hd];
        CachedAttention.Row(q, K, V, hd, i, window, new float[cap], o);
        CachedAttention.RowNaive(q, K, V, hd, i, window, on);
        Close(on, o, 1e-5, 1e-5, "attention");
    }

    [Theory]
    [InlineData(1, 4, 4, 16, 0, false)]     // one decode token, multi-head
    [InlineData(3, 8, 2, 8, 0, false)]      // GQA: 4 query heads per kv head
    [InlineData(9, 6, 3, 24, 4, false)]     // window, odd rows
    [InlineData(40, 8, 8, 64, 0, false)]    // above the parallel threshold
    [InlineData(9, 4, 2, 16, 0, true)]      // instruction-biased: β per head over flagged keys
    public void Step_matches_the_naive_row_for_every_query_and_head(int N, int nH, int nKv, int hd, int window, bool biased)
    {
        // N queries spread over two caches of different capacities, at increasing cache indices.
        int[] caps = [N + 5, 2 * N + 1];
        var K = caps.Select((c, k) => Rand(nKv * c * hd, (ulong)(10 + k))).ToArray();
        var V = caps.Select((c, k) => Rand(nKv * c * hd, (ulong)(20 + k))).ToArray();
        var flags = caps.Select(c => Enumerable.Range(0, c).Select(j => (byte)(j % 3 == 1 ? 1 : 0)).ToArray()).ToArray();
        var kv = new CachedAttention.KvLayer[N];
        var index = new int[N];
        for (int n = 0; n < N; n++) { int k = n % 2; kv[n] = new(K[k], V[k], caps[k], flags[k]); index[n] = n / 2 + (k == 1 ? N : 0); }
        var Q = Rand(N * nH * hd, 30);
        var Out = new float[N * nH * hd];
        float[]? bias = biased ? Enumerable.Range(0, nH).Select(h => h == 0 ? 0f : 0.7f * h).ToArray() : null;
        CachedAttention.Step(Q, Out, N, nH, nKv, hd, kv, index, window, bias);
        int group = nH / nKv;
        for (int n = 0; n < N; n++)
            for (int h = 0; h < nH; h++)
            {
                var expected = new float[hd];
                int cap = kv[n].Capacity, g = h / group;
                CachedAttention.RowNaive(Q.AsSpan((n * nH + h) * hd, hd), kv[n].K.AsSpan(g * cap * hd, cap * hd),
                    kv[n].V.AsSpan(g * cap * hd, cap * hd), hd, index[n], window, expected, kv[n].InstructionKeys, bias?[h] ?? 0f);
                Close(expected, Out.AsSpan((n * nH + h) * hd, hd), 1e-5, 1e-5, $"query {n} head {h}");
            }
    }

    [Fact]
    public void Step_refuses_heads_that_do_not_group()
    {
        var ex = Assert.Throws<ArgumentException>(() =>
            CachedAttention.Step(new float[6 * 8], new float[6 * 8], 1, 6, 4, 8, [new(new float[64], new float[64], 2)], [0], 0));
        Assert.Contains("multiple of 4 kv heads", ex.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1000)]
    public void Log_softmax_row_matches_the_definition_and_keeps_huge_logits_finite(int C)
    {
        var x = Rand(C, (ulong)C, 5);
        x[0] = 1e4f;                                   // exp(1e4) overflows unless the max is subtracted
        var y = new double[C];
        SoftmaxKernel.LogSoftmaxRow(x, y);
        double max = x.Max(), lse = max + Math.Log(x.Sum(v => Math.Exp(v - max)));
        for (int i = 0; i < C; i++) Assert.Equal(x[i] - lse, y[i], 9);
        Assert.Equal(1.0, y.Sum(Math.Exp), 9);
    }

    [Fact]
    public void Rope_and_rms_norm_hand_worked()
    {
        // hd = 4: pairs (x0, x2) and (x1, x3) rotate by angles a and b (rotate_half layout).
        float a = 0.3f, b = 1.1f;
        var x = new float[] { 1, 2, 3, 4 };
        RopeKernel.Forward(x, [MathF.Cos(a), MathF.Cos(b)], [MathF.Sin(a), MathF.Sin(b)], x, 1, 1, 4);
        Assert.Equal(1 * MathF.Cos(a) - 3 * MathF.Sin(a), x[0], 6);
        Assert.Equal(3 * MathF.Cos(a) + 1 * MathF.Sin(a), x[2], 6);
        Assert.Equal(2 * MathF.Cos(b) - 4 * MathF.Sin(b), x[1], 6);
        Assert.Equal(4 * MathF.Cos(b) + 2 * MathF.Sin(b), x[3], 6);
        var y = new float[2];
        RmsNormKernel.Forward([3, 4], [1, 2], y, new float[1], 1, 2, 0f);   // rms = √12.5
        Assert.Equal(3 / MathF.Sqrt(12.5f), y[0], 6);
        Assert.Equal(8 / MathF.Sqrt(12.5f), y[1], 6);
    }
}
