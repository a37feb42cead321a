using System.Text.Json;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Generation;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Models.InstructionAware;
using InstructTune.Tests.Checkpoints;

namespace InstructTune.Tests.Models.InstructionAware;

/// <summary>
/// The instruction-aware variants (segment embeddings, instruction gates, two-stream fusion) against PyTorch written from their
/// formulas (tools/golden/instruction_aware.py → tests/fixtures/instruction_aware/&lt;variant&gt;.json), finite
/// differences, identity at init (training forward and KV-cache inference), save → load → score, cached = uncached.
/// </summary>
public class InstructionAwareTests
{
    internal static JsonElement Load(string v) => JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("instruction_aware", v + ".json"))).RootElement;
    internal static int[] Ints(JsonElement t) => t.GetProperty("data").EnumerateArray().Select(x => x.GetInt32()).ToArray();
    internal static float[] Floats(JsonElement t) => t.GetProperty("data").EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();

    internal static LlamaConfig Golden(JsonElement c) => new()
    {
        VocabSize = c.GetProperty("vocab").GetInt32(), HiddenSize = c.GetProperty("dim").GetInt32(),
        NumHiddenLayers = c.GetProperty("layers").GetInt32(), NumAttentionHeads = c.GetProperty("heads").GetInt32(),
        NumKeyValueHeads = c.GetProperty("kv").GetInt32(), IntermediateSize = c.GetProperty("ffn").GetInt32(),
        RmsNormEps = c.GetProperty("eps").GetDouble(), RopeTheta = c.GetProperty("theta").GetDouble(), QkvBias = true,
        MaxPositionEmbeddings = 64,
    };

    private static InstructionAwareOptions Options(string v, JsonElement root) => new()
    {
        SegmentEmbeddings = v is "segments" or "both" or "all", InstructionEmbedding = v is "instruction_embedding", GateLayers = v is "gates" or "both" or "all" or "cot" ? [0, 1] : [],
        TwoStreamLayers = root.TryGetProperty("two_stream_layers", out var k) ? k.GetInt32() : 0,
        CotWidth = root.TryGetProperty("cot_width", out var r) ? r.GetInt32() : 0,
    };

    public static TheoryData<string> Variants() => new() { "segments", "gates", "both", "two_stream", "all", "cot", "instruction_embedding" };

    [Theory, MemberData(nameof(Variants))]
    public void LogitsLossAndGradientsMatchPyTorch(string variant) => MatchesGolden(variant, root => Options(variant, root));

    /// <summary>The fixture's batch through a model with the given variants at the fixture's parameter values: loss,
    /// every valid logit, and the gradient of every parameter the fixture lists, against PyTorch.</summary>
    internal static void MatchesGolden(string variant, Func<JsonElement, InstructionAwareOptions> options)
    {
        var root = Load(variant);
        var model = new LlamaModel(Golden(root.GetProperty("config")));
        HashInit.Initialize(model);
        model.AttachInstructionAware(options(root));
        foreach (var p in root.GetProperty("params").EnumerateArray()) model.GetParameter(p.GetProperty("name").GetString()!).Load(Floats(p));

        var docs = Ints(root.GetProperty("documents"));
        var batch = new LlamaBatch(new IntTensor(Ints(root.GetProperty("ids")), 2, 9))
        {
            Labels = new IntTensor(Ints(root.GetProperty("labels")), 2, 9),
            PositionIds = new IntTensor(Ints(root.GetProperty("positions")), 2, 9),
            DocumentIds = new IntTensor(docs, 2, 9),
            Segments = new IntTensor(Ints(root.GetProperty("segments")), 2, 9),
        };
        using var tape = Tape.Record();
        var o = model.Forward(batch);
        tape.Backward(o.Loss!);

        double loss = root.GetProperty("loss").GetDouble();
        Assert.True(Math.Abs(o.Loss!.Item() - loss) <= 1e-5 * loss, $"loss: torch {loss}, ours {o.Loss!.Item()}");
        var expected = Floats(root.GetProperty("logits"));
        var logits = o.Logits!.ToArray();
        int V = model.Config.VocabSize;
        for (int i = 0; i < expected.Length; i++)
            if (docs[i / V] >= 0)   // a padding row's own logits follow each side's mask convention
                Assert.True(Math.Abs(logits[i] - expected[i]) <= 1e-5, $"logit {i}: torch {expected[i]}, ours {logits[i]}");
        GradientsMatch(model, root);
    }

    /// <summary>Every gradient the fixture lists, |Δ| ≤ 1e-5·max(1, max|g|).</summary>
    internal static void GradientsMatch(LlamaModel model, JsonElement root)
    {
        foreach (var g in root.GetProperty("grads").EnumerateArray())
        {
            string name = g.GetProperty("name").GetString()!;
            var want = Floats(g);
            var got = model.GetParameter(name).Grad!.ToArray();
            float scale = Math.Max(1f, want.Max(Math.Abs));
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(got[i] - want[i]) <= 1e-5 * scale, $"{name}[{i}]: torch {want[i]}, ours {got[i]}");
        }
    }

    internal static LlamaConfig Tiny() => new()
    {
        VocabSize = 40, HiddenSize = 16, IntermediateSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 4,
        NumKeyValueHeads = 2, RmsNormEps = 1e-5, MaxPositionEmbeddings = 64,
    };

    private static LlamaModel Model(bool withVariants, bool perturb, float range = 0.5f)
    {
        var m = new LlamaModel(Tiny());
        m.InitializeWeights(3, 0.3f);
        if (!withVariants) return m;
        var ia = m.AttachInstructionAware(new InstructionAwareOptions { SegmentEmbeddings = true, GateLayers = [0, 1], TwoStreamLayers = 1, CotWidth = 4, InstructionEmbedding = true });
        if (perturb)
        {
            var rng = new Rng(9);
            foreach (var (_, p) in ia.NamedParameters()) rng.Uniform(p.Span, -range, range);
        }
        return m;
    }

    internal static (int[] Ids, int[] Segs) Sequence()
    {
        int[] segs = [0, 1, 1, 1, 2, 2, 0, 3, 3, 1, 3, 3];   // an instruction token after the prompt too (a later turn)
        var rng = new Rng(4);
        return (segs.Select(_ => rng.NextInt(40)).ToArray(), segs);
    }

    internal static float[] TrainingLogits(LlamaModel m, int[] ids, int[] segs) =>
        m.Forward(new LlamaBatch(new IntTensor(ids, 1, ids.Length)) { Segments = new IntTensor(segs, 1, segs.Length) }).Logits!.ToArray();

    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        var m = Model(true, perturb: true, range: 0.2f);
        var (ids, segs) = Sequence();
        var labels = ids.Select((t, i) => segs[i] == 3 ? t : -100).ToArray();
        var batch = new LlamaBatch(new IntTensor(ids, 1, ids.Length)) { Segments = new IntTensor(segs, 1, 12), Labels = new IntTensor(labels, 1, 12) };
        var ps = m.InstructionAware!.Parameters().Cast<Tensor>().ToArray();
        var r = GradCheck.Check(_ => m.Forward(batch).Loss!, ps, eps: 3e-3, maxPerInput: 8);
        Assert.True(r.MaxError < 2e-2, r.ToString());
    }

    [Fact]
    public void AtInitTheModelIsExactlyTheBaseModelAlsoUnderTheKvCache()
    {
        var (ids, segs) = Sequence();
        var plain = Model(false, false);
        var aware = Model(true, perturb: false);
        Assert.Equal(TrainingLogits(plain, ids, segs), TrainingLogits(aware, ids, segs));

        using var dir = new TempDir();
        LlamaCheckpoint.Save(plain, dir["plain"]);
        LlamaCheckpoint.Save(aware, dir["aware"]);
        Assert.True(File.Exists(Path.Combine(dir["aware"], InstructionAwareFile.FileName)));
        using var a = LoadedModel.Load(dir["plain"], requireTokenizer: false);
        using var b = LoadedModel.Load(dir["aware"], requireTokenizer: false);
        Assert.NotNull(b.Model.InstructionAware);
        var bytes = segs.Select(s => (byte)s).ToArray();
        Assert.Equal(Decode(a.Model, ids, bytes), Decode(b.Model, ids, bytes));
    }

    // Prefill of 7 tokens in two chunks (the instruction split across them), then one token at a time: every step's logits.
    internal static float[] Decode(InferenceModel m, int[] ids, byte[] segs)
    {
        var cache = m.CreateCache(ids.Length);
        var all = new List<float>(m.Forward([new SequenceChunk(cache, ids[..3], AllLogits: true, Segments: segs[..3])]));
        all.AddRange(m.Forward([new SequenceChunk(cache, ids[3..7], AllLogits: true, Segments: segs[3..7])]));
        for (int t = 7; t < ids.Length; t++) all.AddRange(m.Forward([new SequenceChunk(cache, [ids[t]], Segments: [segs[t]])]));
        return [.. all];
    }

    [Fact]
    public void SaveLoadScoreReproducesTheTrainingLogitsAndTheCacheChangesNothing()
    {
        var (ids, segs) = Sequence();
        var m = Model(true, perturb: true);
        var train = TrainingLogits(m, ids, segs);
        using var dir = new TempDir();
        LlamaCheckpoint.Save(m, dir.Path);
        using var loaded = LoadedModel.Load(dir.Path, requireTokenizer: false);
        var bytes = segs.Select(s => (byte)s).ToArray();
        var scored = Scorer.Score(loaded.Model, [ids], keepLogits: true, segments: [bytes])[0].Logits!;
        for (int i = 0; i < train.Length; i++) Assert.True(Math.Abs(train[i] - scored[i]) <= 1e-5, $"logit {i}: training {train[i]}, score {scored[i]}");
        var decoded = Decode(loaded.Model, ids, bytes);
        for (int i = 0; i < train.Length; i++) Assert.True(Math.Abs(train[i] - decoded[i]) <= 1e-5, $"logit {i}: training {train[i]}, KV cache {decoded[i]}");
        // The variants matter: the plain base scores differently.
        Assert.NotEqual(TrainingLogits(Model(false, false), ids, segs), train);
    }

    [Fact]
    public void CachedGenerationEqualsUncachedGeneration() => CachedEqualsUncached(Model(true, perturb: true));

    /// <summary>Greedy generation of 10 tokens from a saved and reloaded m, with and without prompt segments: the KV
    /// cache changes nothing.</summary>
    internal static void CachedEqualsUncached(LlamaModel m)
    {
        using var dir = new TempDir();
        LlamaCheckpoint.Save(m, dir.Path);
        using var loaded = LoadedModel.Load(dir.Path, requireTokenizer: false);
        var (ids, segs) = Sequence();
        var prompt = ids[..7];
        byte[] promptSegs = [.. segs[..7].Select(s => (byte)s)];
        var cached = Generator.Generate(loaded.Model, [prompt, prompt], new GenerationOptions { MaxNewTokens = 10 }, [promptSegs, null])
            .Select(r => r.GeneratedIds).ToList();
        var uncached = Generator.Generate(loaded.Model, [prompt, prompt], new GenerationOptions { MaxNewTokens = 10, UseCache = false }, [promptSegs, null])
            .Select(r => r.GeneratedIds).ToList();
        Assert.Equal(cached, uncached);
    }

    [Fact]
    public void AForwardWithoutSegmentIdsIsRefused()
    {
        var m = Model(true, false);
        var e = Assert.Throws<ArgumentException>(() => m.Forward(new LlamaBatch(new IntTensor([1, 2], 1, 2))));
        Assert.Contains("segment ids", e.Message);
        Assert.Throws<ArgumentException>(() => new LlamaModel(Tiny()).AttachInstructionAware(new InstructionAwareOptions { GateLayers = [2] }));
    }

    [Fact]
    public void AFileWhoseTensorsDoNotFitIsRefusedNamingTheTensor()
    {
        using var dir = new TempDir();
        var m = Model(true, false);
        LlamaCheckpoint.Save(m, dir.Path);
        var wide = Tiny() with { HiddenSize = 32 };
        var e = Assert.Throws<InvalidDataException>(() => InstructionAwareFile.TryLoad(dir.Path, wide));
        Assert.Contains("instruction_aware.", e.Message);
    }
}
