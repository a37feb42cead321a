using System.Text.Json;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Peft;
using InstructTune.Peft.Iapt;
using static InstructTune.Tests.Peft.LoraInvariantTests;

namespace InstructTune.Tests.Peft;

/// <summary>
/// IAPT against PyTorch written from its formulas (tools/golden/iapt.py → tests/fixtures/peft/iapt.json), and what
/// only per-example generated prompts have: another instruction gives other prompts, packed documents get their own,
/// the generator runs once per forward, and the inference path (prompt prefill, then one token at a time over the KV
/// cache) computes the training forward's logits. The method × model invariants are rows of PeftInvariantTests.
/// </summary>
public class IaptTests
{
    private static readonly JsonElement Root = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("peft", "iapt.json"))).RootElement;
    private static int[] Ints(JsonElement t) => PeftGoldenTests.Ints(t);
    private static float[] Floats(JsonElement t) => PeftGoldenTests.Floats(t);

    [Fact]
    public void LogitsLossAndGradientsMatchPyTorch()
    {
        var model = PeftGoldenTests.Model(Root.GetProperty("config"));
        IaptInjector.Inject(model, new IaptConfig
        {
            NumVirtualTokens = Root.GetProperty("num_virtual_tokens").GetInt32(), Bottleneck = Root.GetProperty("bottleneck").GetInt32(),
            Activation = Root.GetProperty("activation").GetString()!,
        }, 1);
        PeftGoldenTests.AssertForwardAndGradientsMatch(model, Root);
    }

    private static LlamaModel Trained(string kind)
    {
        var model = TinyModel(kind);
        var gen = IaptInjector.Inject(model, PeftInvariantTests.IaptConfig, 1);
        var rng = new Rng(21);
        for (int l = 0; l < gen.Layers; l++) rng.Normal(gen.Gate(l).Span, 0, 1f);
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
    public void GatesStartAtZeroTheGeneratorRunsOncePerForwardAndAnotherInstructionGivesOtherPrompts()
    {
        var plain = TrainingLogits(TinyModel("llama-gqa"), Ids, SegA);
        var fresh = TinyModel("llama-gqa");
        var gen = IaptInjector.Inject(fresh, PeftInvariantTests.IaptConfig, 1);
        Assert.Equal(plain, TrainingLogits(fresh, Ids, SegA));                        // gates 0: exactly the base
        Assert.Equal(1, gen.Runs);                                                    // once per forward, not per layer
        var model = Trained("llama-gqa");
        var a = TrainingLogits(model, Ids, SegA);
        int[] other = [.. Ids]; other[1] = 70; other[2] = 71;                          // another instruction, same response tokens
        var b = TrainingLogits(model, other, SegA);
        int V = model.Config.VocabSize;
        Assert.True(a[(6 * V)..].Zip(b[(6 * V)..]).Max(p => Math.Abs(p.First - p.Second)) > 1e-3f, "the response's logits must follow the instruction");
        var disabled = AdapterSwitch.WithAdaptersDisabled(model, () => TrainingLogits(model, Ids, SegA));
        Assert.Equal(plain, disabled);
    }

    /// <summary>Two examples packed into one row get each its own prompts: the second one's logits equal its own forward.</summary>
    [Fact]
    public void PackedDocumentsGetTheirOwnPrompts()
    {
        var model = Trained("qwen2-tied-bias");
        int[] ids = [5, 17, 42, 8, 60, 9, 21, 33, 44, 2], segs = [1, 1, 2, 3, 3, 0, 1, 1, 3, 3];
        var packed = new LlamaBatch(new IntTensor(ids, 1, 10))
        {
            Segments = new IntTensor(segs, 1, 10), DocumentIds = new IntTensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], 1, 10),
            PositionIds = new IntTensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4], 1, 10),
        };
        float[] logits;
        using (Tape.Record(recordGrad: false)) logits = model.Forward(packed).Logits!.ToArray();
        int V = model.Config.VocabSize;
        AssertClose(TrainingLogits(model, ids[5..], segs[5..]), logits[(5 * V)..], 1e-5f);
        AssertClose(TrainingLogits(model, ids[..5], segs[..5]), logits[..(5 * V)], 1e-5f);
    }

    [Theory, InlineData("llama-gqa"), InlineData("qwen2-tied-bias")]
    public void PromptPrefillThenKvCacheDecodingEqualsTheTrainingForward(string kind)
    {
        var baseDir = Directory.CreateTempSubdirectory("base").FullName;
        LlamaCheckpoint.Save(TinyModel(kind), baseDir);
        var model = Trained(kind);
        var dir = Directory.CreateTempSubdirectory("iapt").FullName;
        IaptAdapterIO.Save(model, PeftInvariantTests.IaptConfig, dir);
        var expected = TrainingLogits(model, Ids, SegA);
        int V = model.Config.VocabSize, T = Ids.Length, prompt = 5;
        using var inference = InferenceModel.Load(baseDir);
        PeftRegistry.ApplyTo(inference, dir);
        Assert.True(inference.ReadsSegments);
        var segs = SegA.Select(s => (byte)s).ToArray();
        var whole = inference.Forward([new SequenceChunk(inference.CreateCache(T), Ids, AllLogits: true, Segments: segs)]);
        AssertClose(expected, whole, 1e-4f);
        var cache = inference.CreateCache(T);
        var first = inference.Forward([new SequenceChunk(cache, Ids[..prompt], AllLogits: true, Segments: segs[..prompt])]);
        AssertClose(whole[..(prompt * V)], first, 1e-5f);
        for (int t = prompt; t < T; t++)
        {
            var step = inference.Forward([new SequenceChunk(cache, [Ids[t]], Segments: [segs[t]])]);
            AssertClose(whole[(t * V)..((t + 1) * V)], step, 1e-5f);
        }
        var late = inference.CreateCache(T);
        inference.Forward([new SequenceChunk(late, Ids[..1], Segments: segs[..1])]);
        var e = Assert.Throws<ArgumentException>(() => inference.Forward([new SequenceChunk(late, Ids[1..3], Segments: segs[1..3])]));
        Assert.Contains("first chunk", e.Message);
    }

    [Fact]
    public void IaptIsNotMergedAndBadFilesAndSettingsAreRefused()
    {
        var model = Trained("llama-gqa");
        var e = Assert.Throws<InvalidDataException>(() => PeftRegistry.MergeAndUnload(model));
        Assert.Contains("cannot be merged", e.Message);
        var dir = Directory.CreateTempSubdirectory("iapt").FullName;
        IaptAdapterIO.Save(model, PeftInvariantTests.IaptConfig, dir);
        var wrong = Assert.Throws<InvalidDataException>(() => PeftRegistry.LoadInto(TinyModel("qwen2-tied-bias"), dir));
        Assert.Contains("2 kv", wrong.Message);
        Assert.Contains("1 kv", wrong.Message);
        var bad = Assert.Throws<ArgumentException>(() => IaptInjector.Inject(TinyModel("llama-gqa"), new IaptConfig { Activation = "swish" }, 1));
        Assert.Contains("swish", bad.Message);
        bad = Assert.Throws<ArgumentException>(() => IaptInjector.Inject(TinyModel("llama-gqa"), new IaptConfig { NumVirtualTokens = 0 }, 1));
        Assert.Contains("num_virtual_tokens", bad.Message);
        bad = Assert.Throws<ArgumentException>(() => Trained("llama-gqa").Forward(PeftInvariantTests.BatchFor("iapt"), new LlamaForwardOptions { CheckpointLayers = true }));
        Assert.Contains("activation_checkpointing", bad.Message);
    }
}
