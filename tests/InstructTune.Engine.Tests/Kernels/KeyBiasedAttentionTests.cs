// Instruction-biased attention at the kernel level: the compact per-key bias (mask.KeyFlags × mask.HeadKeyBias) on
// every attention path (GEMM tiles, 4-row blocks, rows) against the naive definition given the same bias as a dense
// (B, H, Tq, Tk) matrix, and Ops.KeyBiasedAttention's gradients (q, k, v and β) against finite differences.
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;
using static InstructTune.Engine.Tests.TestUtil;

namespace InstructTune.Engine.Tests.Kernels;

public class KeyBiasedAttentionTests
{
    private static (byte[] Flags, float[] Beta, float[] Dense) Bias(AttentionDims d, ulong seed)
    {
        var rng = new Rng(seed);
        var flags = new byte[d.B * d.Tk];
        for (int i = 0; i < flags.Length; i++) flags[i] = (byte)(rng.NextInt(3) == 0 ? 1 : 0);
        var beta = Rand(d.H, seed + 1, 2f);
        var dense = new float[d.B * d.H * d.Tq * d.Tk];
        for (int b = 0; b < d.B; b++)
            for (int h = 0; h < d.H; h++)
                for (int i = 0; i < d.Tq; i++)
                    for (int j = 0; j < d.Tk; j++)
                        dense[((b * d.H + h) * d.Tq + i) * d.Tk + j] = flags[b * d.Tk + j] != 0 ? beta[h] : 0f;
        return (flags, beta, dense);
    }

    [Theory]
    [InlineData(2, 7, 4, 2, 8, 0)]      // rows + one 4-row block, GQA
    [InlineData(1, 70, 4, 1, 16, 0)]    // long enough for GEMM tiles
    [InlineData(2, 9, 2, 2, 8, 4)]      // sliding window
    public void EveryPathMatchesTheNaiveDefinitionWithTheDenseBias(int B, int T, int H, int KV, int hd, int window)
    {
        var d = new AttentionDims(B, T, T, H, KV, hd);
        var (flags, beta, dense) = Bias(d, 5);
        var docs = new int[B * T];
        for (int b = 0; b < B; b++) for (int t = 0; t < T; t++) docs[b * T + t] = t < T / 2 ? 0 : 1;   // two packed documents
        var compact = new AttentionMask { Window = window, DocIds = docs, KeyFlags = flags, HeadKeyBias = beta };
        var reference = new AttentionMask { Window = window, DocIds = docs, Bias = dense, BiasBatches = B, BiasHeads = H };
        int qn = B * T * H * hd, kn = B * T * KV * hd;
        var q = Rand(qn, 1); var k = Rand(kn, 2); var v = Rand(kn, 3); var dO = Rand(qn, 4);
        float scale = 1f / MathF.Sqrt(hd);
        float[] o2 = new float[qn], l2 = new float[B * H * T];
        AttentionKernel.ForwardNaive(q, k, v, o2, l2, d, scale, reference);
        float[] dq2 = new float[qn], dk2 = new float[kn], dv2 = new float[kn];
        AttentionKernel.BackwardNaive(dO, q, k, v, dq2, dk2, dv2, d, scale, reference);
        foreach (var path in new[] { AttentionPath.Gemm, AttentionPath.Block4, AttentionPath.Row })
        {
            float[] o1 = new float[qn], l1 = new float[B * H * T];
            AttentionKernel.Forward(q, k, v, o1, l1, d, scale, compact, path);
            Close(o2, o1, 1e-4, 1e-5, $"o ({path})"); Close(l2, l1, 1e-5, 1e-5, $"lse ({path})");
            float[] dq1 = new float[qn], dk1 = new float[kn], dv1 = new float[kn];
            AttentionKernel.Backward(dO, q, k, v, o1, l1, dq1, dk1, dv1, d, scale, compact, path);
            Close(dq2, dq1, 1e-3, 1e-5, $"dq ({path})"); Close(dk2, dk1, 1e-3, 1e-5, $"dk ({path})"); Close(dv2, dv1, 1e-3, 1e-5, $"dv ({path})");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // β = 0: the forward skips the bias, the gradient of β must still be right
    public void GradientsOfQKVAndTheHeadBiasMatchFiniteDifferences(bool zeroBias)
    {
        var d = new AttentionDims(2, 6, 6, 4, 2, 4);
        var (flags, beta, _) = Bias(d, 11);
        var docs = new int[] { 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, -1 };
        var mask = new AttentionMask { DocIds = docs };
        var q = RandTensor(1, 1, 12, 16); var k = RandTensor(2, 1, 12, 8); var v = RandTensor(3, 1, 12, 8);
        var b = Tensor.FromArray(zeroBias ? new float[4] : beta, 4);
        b.RequiresGrad = true;
        var r = GradCheck.Check(x => Ops.KeyBiasedAttention(x[0], x[1], x[2], d, 0.5f, mask, x[3], flags), [q, k, v, b], eps: 1e-2);
        Assert.True(r.MaxError < 1e-2, r.ToString());
    }

    [Fact]
    public void AZeroBiasGivesExactlyPlainAttention()
    {
        var d = new AttentionDims(1, 9, 9, 2, 1, 8);
        var q = Tensor.FromArray(Rand(9 * 16, 1), 9, 16); var k = Tensor.FromArray(Rand(9 * 8, 2), 9, 8); var v = Tensor.FromArray(Rand(9 * 8, 3), 9, 8);
        var flags = new byte[] { 0, 1, 1, 1, 0, 0, 0, 0, 0 };
        Assert.Equal(Ops.Attention(q, k, v, d, 0.3f).ToArray(), Ops.KeyBiasedAttention(q, k, v, d, 0.3f, null, Tensor.Zeros(2), flags).ToArray());
        Assert.NotEqual(Ops.Attention(q, k, v, d, 0.3f).ToArray(), Ops.KeyBiasedAttention(q, k, v, d, 0.3f, null, Tensor.FromArray([0.5f, -1f], 2), flags).ToArray());
    }
}
