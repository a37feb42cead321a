using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;
using static InstructTune.Engine.Tests.TestUtil;

namespace InstructTune.Engine.Tests.Autograd;

/// <summary>Every differentiable op's backward against central finite differences (double-precision probe).</summary>
public class FiniteDifferenceTests
{
    private static void AssertGrad(Func<Tensor[], Tensor> f, params Tensor[] inputs)
    {
        var r = GradCheck.Check(f, inputs, eps: 1e-2, maxPerInput: 48);
        Assert.True(r.MaxError < 2e-2, r.ToString());
    }

    [Fact] public void Linear() => AssertGrad(t => Ops.Linear(t[0], t[1], t[2]), RandTensor(1, 1, 3, 5), RandTensor(2, 1, 4, 5), RandTensor(3, 1, 4));
    [Fact] public void MatMulWithTransposedOperands() => AssertGrad(t => Ops.MatMul(Ops.Transpose(t[0]), Ops.Transpose(t[1])), RandTensor(1, 1, 5, 3), RandTensor(2, 1, 4, 5));
    [Fact] public void AddMulScale() => AssertGrad(t => Ops.Scale(Ops.Mul(Ops.Add(t[0], t[1]), t[1]), 0.5f), RandTensor(1, 1, 2, 3), RandTensor(2, 1, 2, 3));
    [Fact] public void RmsNorm() => AssertGrad(t => Ops.RmsNorm(t[0], t[1], 1e-5f), RandTensor(1, 1, 3, 8), RandTensor(2, 1, 8));
    [Fact] public void LayerNorm() => AssertGrad(t => Ops.LayerNorm(t[0], t[1], t[2], 1e-5f), RandTensor(1, 1, 3, 8), RandTensor(2, 1, 8), RandTensor(3, 1, 8));
    [Fact] public void Silu() => AssertGrad(t => Ops.Silu(t[0]), RandTensor(1, 2, 17));
    [Fact] public void GeluExact() => AssertGrad(t => Ops.Gelu(t[0]), RandTensor(1, 2, 17));
    [Fact] public void GeluTanh() => AssertGrad(t => Ops.Gelu(t[0], tanhApproximation: true), RandTensor(1, 2, 17));
    [Fact] public void SwiGlu() => AssertGrad(t => Ops.SwiGlu(t[0], t[1]), RandTensor(1, 2, 13), RandTensor(2, 1, 13));
    /// <summary>IaSFT's sparse delta (duplicate index included: terms add): y + x·Sᵀ against finite differences.</summary>
    [Fact] public void AddSparseProduct() => AssertGrad(t => Ops.AddSparseProduct(t[0], t[1], [0, 7, 7, 19], t[2], 4, 5), RandTensor(1, 1, 3, 4), RandTensor(2, 1, 3, 5), RandTensor(3, 1, 4));
    /// <summary>IAPT's per-document prompt attention: 4 rows over 2 documents of P = 2 keys (one row without a document), GQA 4/2.</summary>
    [Fact] public void PrefixAttention() => AssertGrad(t => Ops.PrefixAttention(t[0], t[1], t[2], [1, 0, -1, 1], 2, 4, 2, 3, 0.7f),
        RandTensor(1, 1, 4, 12), RandTensor(2, 1, 4, 6), RandTensor(3, 1, 4, 6));
    /// <summary>Trainable token rows (marker tokens under LoRA): rows 2..3 of a 6-row table replaced, then looked up and projected.</summary>
    [Fact]
    public void OverrideRows()
    {
        var ids = new IntTensor([2, 0, 3, 5, 3], 5);
        AssertGrad(t => Ops.Linear(Ops.Embedding(Ops.OverrideRows(t[0], 2, t[1]), ids), Ops.OverrideRows(t[0], 2, t[1])), RandTensor(1, 1, 6, 4), RandTensor(2, 1, 2, 4));
    }
    [Fact] public void MulRows() => AssertGrad(t => Ops.MulRows(t[0], t[1]), RandTensor(1, 1, 3, 5), RandTensor(2, 1, 3));
    [Fact] public void Softmax() => AssertGrad(t => Ops.Softmax(t[0]), RandTensor(1, 2, 3, 7));

    [Fact]
    public void Embedding()
    {
        var ids = new IntTensor([2, 0, 2, 3], 2, 2);
        AssertGrad(t => Ops.Embedding(t[0], ids), RandTensor(1, 1, 4, 5));
    }

    [Fact]
    public void Rope()
    {
        int N = 3, H = 2, hd = 8;
        var inv = RopeKernel.InverseFrequencies(hd, 10000);
        float[] cos = new float[N * hd / 2], sin = new float[N * hd / 2];
        RopeKernel.CosSin([0, 5, 17], inv, cos, sin);
        AssertGrad(t => Ops.Rope(t[0], Tensor.FromArray(cos, N, hd / 2), Tensor.FromArray(sin, N, hd / 2), H, hd), RandTensor(1, 1, N, H * hd));
    }

    [Fact]
    public void Dropout()
    {
        // The same seed each call gives the same mask, so the function is deterministic for the probe.
        AssertGrad(t => Ops.Dropout(t[0], 0.3f, new Rng(5)), RandTensor(1, 1, 40));
    }

    [Theory]
    [InlineData(0, false)] [InlineData(0, true)] [InlineData(3, false)]
    public void AttentionWithGqa(int window, bool docs)
    {
        int B = 2, T = 6, H = 4, KV = 2, hd = 4;
        var d = new AttentionDims(B, T, T, H, KV, hd);
        var mask = new AttentionMask { Window = window, DocIds = docs ? [0, 0, 1, 1, 1, 2, 0, 0, 0, 0, 1, 1] : null, KeyValid = docs ? null : [1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1] };
        AssertGrad(t => Ops.Attention(t[0], t[1], t[2], d, 0.5f, mask),
            RandTensor(1, 1, B * T, H * hd), RandTensor(2, 1, B * T, KV * hd), RandTensor(3, 1, B * T, KV * hd));
    }

    [Theory]
    [InlineData(0f)] [InlineData(0.1f)]
    public void CrossEntropyMeanIgnoringMinus100(float smoothing)
    {
        int[] targets = [1, -100, 4, 0];
        AssertGrad(t => Ops.CrossEntropy(t[0], targets, smoothing), RandTensor(1, 2, 4, 5));
    }

    [Fact]
    public void CheckpointedBlockMatchesFiniteDifferences()
    {
        var w = RandTensor(2, 1, 6, 6);
        AssertGrad(t => Checkpoint.Run(h => Ops.Silu(Ops.Linear(h, t[1])), t[0]), RandTensor(1, 1, 3, 6), w);
    }

    [Fact]
    public void TheCheckerCatchesAWrongGradient()
    {
        // A deliberately wrong op (backward doubles the true gradient) must fail the check.
        static Tensor Wrong(Tensor x)
        {
            var y = Tensor.Empty(x.Shape);
            x.Span.CopyTo(y.Span);
            if (Tape.Needs(x)) Tape.Add(y, () => { var g = x.EnsureGrad().Span; for (int i = 0; i < g.Length; i++) g[i] += 2 * y.Grad!.Span[i]; });
            return y;
        }
        var r = GradCheck.Check(t => Wrong(t[0]), [RandTensor(1, 1, 5)], eps: 1e-2);
        Assert.True(r.MaxError > 0.3, r.ToString());
    }
}
