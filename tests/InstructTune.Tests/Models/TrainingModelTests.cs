using InstructTune.Engine.Autograd;
using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;
using InstructTune.Models;

namespace InstructTune.Tests.Models;

/// <summary>The trainable decoder on a tiny config: names, gradients (finite differences), masks, training.</summary>
public class TrainingModelTests
{
    private static LlamaConfig Tiny(bool tied = false, int? window = null, bool qkvBias = false) => new()
    {
        VocabSize = 32, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 4,
        NumKeyValueHeads = 2, RmsNormEps = 1e-5, TieWordEmbeddings = tied, SlidingWindow = window, QkvBias = qkvBias,
    };

    private static LlamaModel Model(LlamaConfig c, ulong seed = 1)
    {
        var m = new LlamaModel(c);
        m.InitializeWeights(seed, 0.3f);
        // Norm weights away from 1 so a wrong norm convention shows.
        var rng = new Rng(seed + 100);
        foreach (var (name, p) in m.NamedParameters())
            if (name.EndsWith("norm.weight")) rng.Uniform(p.Span, 0.5f, 1.5f);
        return m;
    }

    private static IntTensor Ids(int B, int T, ulong seed, int vocab = 32)
    {
        var rng = new Rng(seed);
        return new IntTensor(Enumerable.Range(0, B * T).Select(_ => rng.NextInt(vocab)).ToArray(), B, T);
    }

    [Fact]
    public void ParameterNamesFollowHuggingFace()
    {
        var names = new LlamaModel(Tiny(qkvBias: true)).NamedParameters().Select(x => x.Name).ToList();
        Assert.Equal("model.embed_tokens.weight", names[0]);
        Assert.Contains("model.layers.1.self_attn.q_proj.weight", names);
        Assert.Contains("model.layers.1.self_attn.k_proj.bias", names);
        Assert.DoesNotContain("model.layers.1.self_attn.o_proj.bias", names);
        Assert.Contains("model.layers.0.mlp.down_proj.weight", names);
        Assert.Contains("model.layers.0.post_attention_layernorm.weight", names);
        Assert.Equal(["model.norm.weight", "lm_head.weight"], names[^2..]);
        Assert.Equal(3 + 2 * (2 + 4 + 3 + 3), names.Count); // per layer: 2 norms, 4 attention weights, 3 qkv biases, 3 mlp
    }

    [Fact]
    public void TiedLmHeadIsTheEmbeddingParameter()
    {
        var m = new LlamaModel(Tiny(tied: true));
        Assert.Same(m.GetParameter("model.embed_tokens.weight"), m.GetParameter("lm_head.weight"));
        Assert.DoesNotContain("lm_head.weight", m.NamedParameters().Select(x => x.Name));
    }

    [Fact]
    public void LossGradientsMatchFiniteDifferencesForEveryParameterTensor()
    {
        var m = Model(Tiny(tied: true, window: 3, qkvBias: true));
        var ids = Ids(2, 5, 7);
        var labels = (int[])ids.Data.Clone(); labels[2] = -100;
        var batch = new LlamaBatch(ids) { Labels = new IntTensor(labels, 2, 5), AttentionMask = new IntTensor([1, 1, 1, 1, 1, 0, 1, 1, 1, 1], 2, 5) };
        var ps = m.Parameters().Cast<Tensor>().ToArray();
        var r = GradCheck.Check(_ => m.Forward(batch).Loss!, ps, eps: 1e-2, maxPerInput: 6);
        Assert.True(r.MaxError < 3e-2, r.ToString());
    }

    [Fact]
    public void CheckpointedLayersGiveIdenticalLossAndGradients()
    {
        var m = Model(Tiny());
        var ids = Ids(2, 6, 3);
        var batch = new LlamaBatch(ids) { Labels = ids };
        float[] Run(bool ckpt)
        {
            m.ZeroGrad();
            using var tape = Tape.Record();
            var loss = m.Forward(batch, new LlamaForwardOptions { CheckpointLayers = ckpt }).Loss!;
            tape.Backward(loss);
            return [loss.Item(), .. m.Parameters().SelectMany(p => p.Grad!.ToArray())];
        }
        Assert.Equal(Run(false), Run(true));
    }

    [Fact]
    public void RightPaddingDoesNotChangeTheLogitsOfRealTokens()
    {
        var m = Model(Tiny());
        var ids = Ids(1, 5, 9);
        var alone = m.Forward(new LlamaBatch(ids)).Logits!.ToArray();
        var padded = new IntTensor([.. ids.Data, 0, 0], 1, 7);
        var withPad = m.Forward(new LlamaBatch(padded) { AttentionMask = new IntTensor([1, 1, 1, 1, 1, 0, 0], 1, 7) }).Logits!.ToArray();
        // Exact on the managed GEMM (rows are independent); OpenBLAS may block M=5 and M=7 differently, which
        // changes float summation order by ~1e-7, so compare within 1e-5: a padding leak moves logits by ~1e-1.
        var head = withPad[..alone.Length];
        for (int i = 0; i < alone.Length; i++)
            Assert.True(Math.Abs(alone[i] - head[i]) <= 1e-5f * (1 + Math.Abs(alone[i])), $"logit {i}: {alone[i]} vs {head[i]}");
    }

    [Fact]
    public void PackedDocumentsGiveTheSameLogitsAsSeparateSequences()
    {
        var m = Model(Tiny());
        var a = Ids(1, 3, 1); var b = Ids(1, 4, 2);
        var la = m.Forward(new LlamaBatch(a)).Logits!.ToArray();
        var lb = m.Forward(new LlamaBatch(b)).Logits!.ToArray();
        var packed = new LlamaBatch(new IntTensor([.. a.Data, .. b.Data], 1, 7))
        {
            PositionIds = new IntTensor([0, 1, 2, 0, 1, 2, 3], 1, 7),
            DocumentIds = new IntTensor([0, 0, 0, 1, 1, 1, 1], 1, 7),
        };
        var lp = m.Forward(packed).Logits!.ToArray();
        TestClose([.. la, .. lb], lp, 1e-5f);
    }

    [Fact]
    public void SumReductionOverMicroBatchesEqualsOneBigBatchMean()
    {
        var m = Model(Tiny());
        var ids = Ids(4, 5, 11);
        m.ZeroGrad();
        using (var tape = Tape.Record()) tape.Backward(m.Forward(new LlamaBatch(ids) { Labels = ids }).Loss!);
        var whole = m.Parameters().SelectMany(p => p.Grad!.ToArray()).ToArray();
        m.ZeroGrad();
        int total = 4 * 4; // every row has T−1 = 4 scored positions
        for (int half = 0; half < 2; half++)
        {
            var part = new IntTensor(ids.Data[(half * 10)..(half * 10 + 10)], 2, 5);
            using var tape = Tape.Record();
            var o = m.Forward(new LlamaBatch(part) { Labels = part }, new LlamaForwardOptions { Reduction = LossReduction.Sum, ReturnLogits = false });
            Assert.Equal(8, o.LossTokens);
            tape.Backward(Ops.Scale(o.Loss!, 1f / total));
        }
        TestClose(whole, m.Parameters().SelectMany(p => p.Grad!.ToArray()).ToArray(), 1e-4f);
    }

    [Fact]
    public void AdamWTrainingDrivesTheLossDown()
    {
        var m = Model(Tiny());
        var ids = Ids(2, 8, 5);
        var opt = new AdamW(ParamGroup.DecayMatricesOnly(m.Parameters(), 0.01f), lr: 1e-2f);
        float first = 0, last = 0;
        for (int step = 0; step < 30; step++)
        {
            m.ZeroGrad();
            using var tape = Tape.Record();
            var loss = m.Forward(new LlamaBatch(ids) { Labels = ids }).Loss!;
            tape.Backward(loss);
            Assert.True(NumericGuard.GradientsFinite(m.Parameters()));
            GradClip.ClipGlobalNorm(m.Parameters(), 1f);
            opt.Step();
            if (step == 0) first = loss.Item();
            last = loss.Item();
        }
        Assert.True(last < first * 0.5f, $"loss {first} → {last}");
    }

    [Fact]
    public void ReplaceModuleWrapsAProjectionByName()
    {
        var m = Model(Tiny());
        var ids = Ids(1, 4, 2);
        var before = m.Forward(new LlamaBatch(ids)).Logits!.ToArray();
        m.ReplaceModule("model.layers.0.self_attn.q_proj", old => new ScaledLinear((InstructTune.Engine.Modules.Linear)old));
        Assert.Contains("model.layers.0.self_attn.q_proj.inner.weight", m.NamedParameters().Select(x => x.Name));
        Assert.NotEqual(before, m.Forward(new LlamaBatch(ids)).Logits!.ToArray());
    }

    private sealed class ScaledLinear : InstructTune.Engine.Modules.Module, InstructTune.Engine.Modules.IUnaryModule
    {
        private readonly InstructTune.Engine.Modules.Linear inner;
        public ScaledLinear(InstructTune.Engine.Modules.Linear inner) => this.inner = RegisterModule("inner", inner);
        public Tensor Forward(Tensor x) => Ops.Scale(inner.Forward(x), 2f);
    }

    private static void TestClose(float[] expected, float[] actual, float tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i])), $"[{i}] {expected[i]} vs {actual[i]}");
    }
}
