using System.Text.Json;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Peft;
using InstructTune.Peft.Ipeft;
using InstructTune.Tests.Models;
using static InstructTune.Tests.Peft.LoraInvariantTests;

namespace InstructTune.Tests.Peft;

/// <summary>
/// iPEFT against PyTorch written from its formulas (tools/golden/ipeft.py → tests/fixtures/peft/ipeft.json), and what
/// only instruction conditioning has: another instruction gives other gates, and the inference path (KV cache, one
/// token at a time, segments per token) computes the training forward's logits. The method × model invariants are
/// rows of PeftInvariantTests.
/// </summary>
public class IpeftTests
{
    private static readonly JsonElement Root = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("peft", "ipeft.json"))).RootElement;
    private static int[] Ints(JsonElement t) => PeftGoldenTests.Ints(t);
    private static float[] Floats(JsonElement t) => PeftGoldenTests.Floats(t);

    [Fact]
    public void LogitsLossAndGradientsMatchPyTorch()
    {
        var model = PeftGoldenTests.Model(Root.GetProperty("config"));
        IpeftInjector.Inject(model, new IpeftConfig { Rank = Root.GetProperty("rank").GetInt32(), Alpha = Root.GetProperty("alpha").GetDouble() }, 1);
        PeftGoldenTests.AssertForwardAndGradientsMatch(model, Root);
    }

    private static LlamaModel Trained(string kind)
    {
        var model = TinyModel(kind);
        var layers = IpeftInjector.Inject(model, PeftInvariantTests.IpeftConfig, 1);
        var rng = new Rng(21);
        var gate = (IpeftGate)model.Conditioner!;
        for (int l = 0; l < gate.Layers; l++) { rng.Normal(gate.Weight(l).Span, 0, 1f); rng.Normal(gate.Bias(l).Span, 0, 0.3f); }
        return model;
    }

    private static readonly int[] Ids = [5, 17, 42, 8, 60, 3, 11, 29, 31];
    private static readonly int[] SegA = [0, 1, 1, 1, 2, 3, 3, 3, 3];

    private static float[] TrainingLogits(LlamaModel model, int[] ids, int[] segs)
    {
        using var tape = Tape.Record(recordGrad: false);
        return model.Forward(new LlamaBatch(new IntTensor(ids, 1, ids.Length)) { Segments = new IntTensor(segs, 1, segs.Length) }).Logits!.ToArray();
    }

    [Fact]
    public void GatesStartAtZeroAndAnotherInstructionGivesAnotherOutput()
    {
        var plain = TrainingLogits(TinyModel("llama-gqa"), Ids, SegA);
        var fresh = TinyModel("llama-gqa");
        IpeftInjector.Inject(fresh, PeftInvariantTests.IpeftConfig, 1);
        AssertClose(plain, TrainingLogits(fresh, Ids, SegA), 1e-6f);                  // gates 0: the base (q/k/v unfused: rounding only)
        var model = Trained("llama-gqa");
        var a = TrainingLogits(model, Ids, SegA);
        int[] other = [.. Ids]; other[1] = 70; other[2] = 71;                          // another instruction, same response tokens
        var b = TrainingLogits(model, other, SegA);
        int V = model.Config.VocabSize;
        Assert.True(a[(6 * V)..].Zip(b[(6 * V)..]).Max(p => Math.Abs(p.First - p.Second)) > 1e-3f, "the response's logits must follow the instruction");
        var disabled = AdapterSwitch.WithAdaptersDisabled(model, () => TrainingLogits(model, Ids, SegA));
        AssertClose(plain, disabled, 1e-6f);
    }

    [Theory, InlineData("llama-gqa"), InlineData("qwen2-tied-bias")]
    public void KvCacheDecodingWithSegmentsEqualsTheTrainingForward(string kind)
    {
        var baseDir = Directory.CreateTempSubdirectory("base").FullName;
        LlamaCheckpoint.Save(TinyModel(kind), baseDir);
        var model = Trained(kind);
        var dir = Directory.CreateTempSubdirectory("ipeft").FullName;
        IpeftAdapterIO.Save(model, PeftInvariantTests.IpeftConfig, dir);
        var expected = TrainingLogits(model, Ids, SegA);
        int V = model.Config.VocabSize, T = Ids.Length;
        using var inference = InferenceModel.Load(baseDir);
        PeftRegistry.ApplyTo(inference, dir);
        var segs = SegA.Select(s => (byte)s).ToArray();
        var prefill = inference.Forward([new SequenceChunk(inference.CreateCache(T), Ids, AllLogits: true, Segments: segs)]);
        AssertClose(expected, prefill, 1e-4f);
        var cache = inference.CreateCache(T);
        for (int t = 0; t < T; t++)
        {
            var step = inference.Forward([new SequenceChunk(cache, [Ids[t]], Segments: [segs[t]])]);
            AssertClose(prefill[(t * V)..((t + 1) * V)], step, 1e-5f);
        }
    }

    [Fact]
    public void IpeftIsNotMergedAndBadFilesAreRefused()
    {
        var model = Trained("llama-gqa");
        var e = Assert.Throws<InvalidDataException>(() => PeftRegistry.MergeAndUnload(model));
        Assert.Contains("cannot be merged", e.Message);
        var dir = Directory.CreateTempSubdirectory("ipeft").FullName;
        IpeftAdapterIO.Save(model, PeftInvariantTests.IpeftConfig, dir);
        var wrong = Assert.Throws<InvalidDataException>(() => PeftRegistry.LoadInto(TinyModel("qwen2-tied-bias"), dir));
        Assert.Contains("v_proj", wrong.Message);
        var t = Assert.Throws<ArgumentException>(() => IpeftInjector.Inject(TinyModel("llama-gqa"), new IpeftConfig { TargetModules = ["lm_head"] }, 1));
        Assert.Contains("lm_head", t.Message);
    }
}
