using InstructTune.Engine.Kernels;
using static InstructTune.Engine.Tests.TestUtil;

namespace InstructTune.Engine.Tests.Kernels;

/// <summary>Every optimised kernel against its naive (double-precision) twin on awkward shapes.</summary>
public class KernelTwinTests
{
    public static TheoryData<int> Sizes() => new(AwkwardSizes);

    [Theory, MemberData(nameof(Sizes))]
    public void RmsNormMatchesNaive(int C)
    {
        int N = 5;
        var x = Rand(N * C, 1); var w = Rand(C, 2); var dy = Rand(N * C, 3);
        float[] y1 = new float[N * C], y2 = new float[N * C], r1 = new float[N], r2 = new float[N];
        RmsNormKernel.Forward(x, w, y1, r1, N, C, 1e-5f);
        RmsNormKernel.ForwardNaive(x, w, y2, r2, N, C, 1e-5f);
        Close(y2, y1, 1e-5, 1e-6, "y"); Close(r2, r1, 1e-5, 0, "rstd");
        float[] dx1 = Rand(N * C, 4), dx2 = (float[])dx1.Clone(), dw1 = Rand(C, 5), dw2 = (float[])dw1.Clone();
        RmsNormKernel.Backward(dy, x, w, r1, dx1, dw1, N, C);
        RmsNormKernel.BackwardNaive(dy, x, w, r1, dx2, dw2, N, C);
        Close(dx2, dx1, 1e-4, 1e-5, "dx"); Close(dw2, dw1, 1e-4, 1e-5, "dw");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void LayerNormMatchesNaive(int C)
    {
        int N = 3;
        var x = Rand(N * C, 1); var w = Rand(C, 2); var b = Rand(C, 3); var dy = Rand(N * C, 4);
        float[] y1 = new float[N * C], y2 = new float[N * C], m1 = new float[N], m2 = new float[N], r1 = new float[N], r2 = new float[N];
        LayerNormKernel.Forward(x, w, b, y1, m1, r1, N, C, 1e-5f);
        LayerNormKernel.ForwardNaive(x, w, b, y2, m2, r2, N, C, 1e-5f);
        Close(y2, y1, 1e-5, 1e-5, "y");
        float[] dx1 = new float[N * C], dx2 = new float[N * C], dw1 = new float[C], dw2 = new float[C], db1 = new float[C], db2 = new float[C];
        LayerNormKernel.Backward(dy, x, w, m1, r1, dx1, dw1, db1, N, C);
        LayerNormKernel.BackwardNaive(dy, x, w, m1, r1, dx2, dw2, db2, N, C);
        Close(dx2, dx1, 1e-4, 1e-4, "dx"); Close(dw2, dw1, 1e-4, 1e-5, "dw"); Close(db2, db1, 1e-5, 1e-6, "db");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void SoftmaxMatchesNaive(int C)
    {
        int N = 4;
        var x = Rand(N * C, 1, 5f); var dy = Rand(N * C, 2);
        float[] y1 = new float[N * C], y2 = new float[N * C];
        SoftmaxKernel.Forward(x, y1, N, C); SoftmaxKernel.ForwardNaive(x, y2, N, C);
        Close(y2, y1, 1e-5, 1e-8, "y");
        float[] dx1 = new float[N * C], dx2 = new float[N * C];
        SoftmaxKernel.Backward(dy, y1, dx1, N, C); SoftmaxKernel.BackwardNaive(dy, y1, dx2, N, C);
        Close(dx2, dx1, 1e-4, 1e-7, "dx");
    }

    [Fact]
    public void SoftmaxSubtractsTheRowMaxSoHugeLogitsStayFinite()
    {
        float[] x = [1000f, 1001f, 999f], y = new float[3];
        SoftmaxKernel.Forward(x, y, 1, 3);
        // exp(0), exp(1), exp(−1) normalised, worked by hand: e/(1+e+1/e) = 0.66524…
        Close([0.24472847f, 0.66524096f, 0.09003057f], y, 1e-6, 0);
    }

    [Theory, MemberData(nameof(Sizes))]
    public void SwiGluMatchesNaive(int n)
    {
        var g = Rand(n, 1, 3f); var u = Rand(n, 2); var dy = Rand(n, 3);
        float[] y1 = new float[n], y2 = new float[n];
        ActivationKernels.SwiGluForward(g, u, y1); ActivationKernels.SwiGluForwardNaive(g, u, y2);
        Close(y2, y1, 1e-5, 1e-7, "y");
        float[] dg1 = new float[n], dg2 = new float[n], du1 = new float[n], du2 = new float[n];
        ActivationKernels.SwiGluBackward(dy, g, u, dg1, du1); ActivationKernels.SwiGluBackwardNaive(dy, g, u, dg2, du2);
        Close(dg2, dg1, 1e-5, 1e-6, "dg"); Close(du2, du1, 1e-5, 1e-6, "du");
        ActivationKernels.SiluForward(g, y1); ActivationKernels.SiluForwardNaive(g, y2);
        Close(y2, y1, 1e-5, 1e-7, "silu");
    }

    [Theory, MemberData(nameof(Sizes))]
    public void EmbeddingMatchesNaive(int C)
    {
        int V = 11; int[] ids = [3, 0, 10, 3, 3, 7];
        var W = Rand(V * C, 1); var dy = Rand(ids.Length * C, 2);
        float[] y1 = new float[ids.Length * C], y2 = new float[ids.Length * C];
        EmbeddingKernel.Forward(W, ids, y1, V, C); EmbeddingKernel.ForwardNaive(W, ids, y2, V, C);
        Assert.Equal(y2, y1);
        float[] d1 = new float[V * C], d2 = new float[V * C];
        EmbeddingKernel.Backward(d1, ids, dy, V, C); EmbeddingKernel.BackwardNaive(d2, ids, dy, V, C);
        Close(d2, d1, 1e-6, 1e-7, "dW");
    }

    [Fact]
    public void EmbeddingRejectsAnOutOfRangeIdNamingItsPosition()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingKernel.Forward(new float[8], [1, 4], new float[4], 4, 2));
        Assert.Contains("position 1", ex.Message);
    }

    [Theory]
    [InlineData(1, 2)] [InlineData(7, 8)] [InlineData(63, 16)] [InlineData(65, 64)] [InlineData(257, 6)] [InlineData(1000, 4)]
    public void RopeMatchesNaive(int N, int hd)
    {
        int H = 3;
        var x = Rand(N * H * hd, 1); var dy = Rand(N * H * hd, 2);
        var pos = Enumerable.Range(0, N).Select(i => (i * 37) % 1500).ToArray();
        var inv = RopeKernel.InverseFrequencies(hd, 10000);
        float[] cos = new float[N * hd / 2], sin = new float[N * hd / 2];
        RopeKernel.CosSin(pos, inv, cos, sin);
        float[] y1 = new float[x.Length], y2 = new float[x.Length];
        RopeKernel.Forward(x, cos, sin, y1, N, H, hd); RopeKernel.ForwardNaive(x, cos, sin, y2, N, H, hd);
        Close(y2, y1, 1e-5, 1e-6, "y");
        float[] d1 = new float[x.Length], d2 = new float[x.Length];
        RopeKernel.Backward(dy, cos, sin, d1, N, H, hd); RopeKernel.BackwardNaive(dy, cos, sin, d2, N, H, hd);
        Close(d2, d1, 1e-5, 1e-6, "dx");
    }

    [Theory]
    [InlineData(1, 0f)] [InlineData(7, 0.1f)] [InlineData(63, 0f)] [InlineData(65, 0.2f)] [InlineData(257, 0f)] [InlineData(1000, 0.1f)]
    public void CrossEntropyMatchesNaive(int V, float smoothing)
    {
        int N = 6;
        var x = Rand(N * V, 1, 4f);
        int[] t = [0, V - 1, -100, V / 2, -100, 0];
        var dl = Rand(N, 2);
        float[] l1 = new float[N], l2 = new float[N], s1 = new float[N], s2 = new float[N];
        int c1 = CrossEntropyKernel.Forward(x, t, l1, s1, N, V, smoothing);
        int c2 = CrossEntropyKernel.ForwardNaive(x, t, l2, s2, N, V, smoothing);
        Assert.Equal(4, c1); Assert.Equal(c2, c1);
        Close(l2, l1, 1e-5, 1e-5, "loss");
        float[] d1 = new float[N * V], d2 = new float[N * V];
        CrossEntropyKernel.Backward(x, t, s1, dl, d1, N, V, smoothing);
        CrossEntropyKernel.BackwardNaive(x, t, s1, dl, d2, N, V, smoothing);
        Close(d2, d1, 1e-4, 1e-6, "dlogits");
    }

    public static TheoryData<int, int, int, int, int, int> AttentionShapes() => new()
    {
        { 1, 1, 1, 1, 1, 0 },      // B, T, H, KV, hd, window
        { 2, 7, 4, 2, 8, 0 },
        { 1, 63, 2, 1, 16, 0 },
        { 2, 65, 2, 2, 8, 5 },
        { 1, 257, 2, 1, 4, 0 },
        { 1, 1000, 1, 1, 2, 64 },
        { 1, 70, 2, 1, 24, 0 },    // 4-row path: a 16-column block and an 8-column rest
        { 2, 33, 2, 2, 64, 9 },    // 4-row path: four 16-column blocks, window
    };

    [Theory, MemberData(nameof(AttentionShapes))]
    public void AttentionMatchesNaive(int B, int T, int H, int KV, int hd, int window)
    {
        var d = new AttentionDims(B, T, T, H, KV, hd);
        var mask = new AttentionMask { Window = window };
        RunAttention(d, mask, 11);
    }

    [Theory]
    [InlineData(6)]  // row path
    [InlineData(16)] // 4-row AVX2 block path (hd % 8 == 0) plus the row path for the last row
    [InlineData(24)] // 4-row path with a 16-column block and an 8-column rest
    public void AttentionWithPaddingDocumentsAndBiasMatchesNaive(int hd)
    {
        int B = 2, T = 9, H = 4, KV = 2;
        var d = new AttentionDims(B, T, T, H, KV, hd);
        var mask = new AttentionMask
        {
            KeyValid = [0, 0, 1, 1, 1, 1, 1, 1, 1, /* b1 */ 1, 1, 1, 1, 1, 1, 1, 0, 0],
            DocIds = [0, 0, 0, 0, 1, 1, 1, 2, 2, /* b1 */ 5, 5, 5, 6, 6, 6, 6, 6, 6],
            Bias = Rand(H * T * T, 9), BiasHeads = H,
        };
        RunAttention(d, mask, 12);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(6)]
    public void AttentionWithPackedDocumentsOnlyMatchesNaive(int window)
    {
        // Packed rows without padding or bias: the 4-row path's document fast path. Blocks of four queries fall
        // inside one document (rows 8–11, 12–15 of b0) and across a boundary (rows 4–7: documents 1 and 2).
        int B = 2, T = 21, H = 2, KV = 1, hd = 16;
        var d = new AttentionDims(B, T, T, H, KV, hd);
        var mask = new AttentionMask
        {
            Window = window,
            DocIds = [0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3,
                      /* b1 */ 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 8, 8],
        };
        RunAttention(d, mask, 13);
    }

    [Fact]
    public void AttentionWithFewerQueriesThanKeysMatchesNaive()
    {
        // A KV-cache call: 3 new queries against 10 keys stored in a 16-row cache.
        var d = new AttentionDims(2, 3, 10, 4, 2, 8) { KvRowsPerBatch = 16 };
        RunAttention(d, new AttentionMask(), 13);
        d = new AttentionDims(2, 6, 10, 4, 2, 8) { KvRowsPerBatch = 16 }; // 4-row block + 2 rows
        RunAttention(d, new AttentionMask(), 13);
    }

    /// <summary>Every path that serves the shape (GEMM tiles, 4-row blocks, single rows) against the naive definition.</summary>
    private static void RunAttention(AttentionDims d, AttentionMask mask, ulong seed)
    {
        foreach (var path in new[] { AttentionPath.Gemm, AttentionPath.Block4, AttentionPath.Row })
            RunAttention(d, mask, seed, path);
    }

    private static void RunAttention(AttentionDims d, AttentionMask mask, ulong seed, AttentionPath path)
    {
        int qn = d.B * d.Tq * d.H * d.hd, kn = d.B * d.KvRows * d.KV * d.hd;
        var q = Rand(qn, seed); var k = Rand(kn, seed + 1); var v = Rand(kn, seed + 2); var dO = Rand(qn, seed + 3);
        float scale = 1f / MathF.Sqrt(d.hd);
        float[] o1 = new float[qn], o2 = new float[qn], l1 = new float[d.B * d.H * d.Tq], l2 = new float[l1.Length];
        AttentionKernel.Forward(q, k, v, o1, l1, d, scale, mask, path);
        AttentionKernel.ForwardNaive(q, k, v, o2, l2, d, scale, mask);
        Close(o2, o1, 1e-4, 1e-5, $"o ({path})"); Close(l2, l1, 1e-5, 1e-5, $"lse ({path})");
        float[] dq1 = new float[qn], dk1 = new float[kn], dv1 = new float[kn], dq2 = new float[qn], dk2 = new float[kn], dv2 = new float[kn];
        AttentionKernel.Backward(dO, q, k, v, o1, l1, dq1, dk1, dv1, d, scale, mask, path);
        AttentionKernel.BackwardNaive(dO, q, k, v, dq2, dk2, dv2, d, scale, mask);
        Close(dq2, dq1, 1e-3, 1e-5, $"dq ({path})"); Close(dk2, dk1, 1e-3, 1e-5, $"dk ({path})"); Close(dv2, dv1, 1e-3, 1e-5, $"dv ({path})");
    }
}
