using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Generation;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Models.InstructionAware;
using InstructTune.Recipes;
using InstructTune.Tests.Checkpoints;
using InstructTune.Tests.Training;
using InstructTune.Training.Config;
using static InstructTune.Tests.Models.InstructionAware.InstructionAwareTests;

namespace InstructTune.Tests.Models.InstructionAware;

/// <summary>
/// Instruction-biased attention (model.instruction_aware.biased_attention): PyTorch golden from the formula
/// (tools/golden/instruction_aware.py "biased"), finite differences, identity at init (training forward and KV cache),
/// save → load → score, cached = uncached generation, with and without a sliding window.
/// </summary>
public class BiasedAttentionTests
{
    private static readonly InstructionAwareOptions Biased = new() { BiasedAttention = true };

    [Fact]
    public void LogitsLossAndGradientsMatchPyTorch() => MatchesGolden("biased", _ => Biased);

    private static LlamaModel Model(bool withBias, bool perturb, int window = 0)
    {
        // A window is saved in config.json for Mistral-type models only.
        var m = new LlamaModel(window == 0 ? Tiny() : Tiny() with { SlidingWindow = window, ModelType = "mistral" });
        m.InitializeWeights(3, 0.3f);
        if (!withBias) return m;
        var ia = m.AttachInstructionAware(Biased);
        if (perturb)
        {
            var rng = new Rng(9);
            foreach (var p in ia.AttentionBias!) rng.Uniform(p.Span, -2f, 2f);
        }
        return m;
    }

    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        var m = Model(true, perturb: true);
        var (ids, segs) = Sequence();
        var labels = ids.Select((t, i) => segs[i] == 3 ? t : -100).ToArray();
        var batch = new LlamaBatch(new IntTensor(ids, 1, ids.Length)) { Segments = new IntTensor(segs, 1, 12), Labels = new IntTensor(labels, 1, 12) };
        var ps = m.InstructionAware!.Parameters().Cast<Tensor>().Append(m.GetParameter("model.layers.0.self_attn.q_proj.weight")).ToArray();
        var r = GradCheck.Check(_ => m.Forward(batch).Loss!, ps, eps: 3e-3, maxPerInput: 8);
        Assert.True(r.MaxError < 2e-2, r.ToString());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void AtInitTheModelIsExactlyTheBaseModelAlsoUnderTheKvCache(int window)
    {
        var (ids, segs) = Sequence();
        var plain = Model(false, false, window);
        var aware = Model(true, perturb: false, window);
        Assert.Equal(TrainingLogits(plain, ids, segs), TrainingLogits(aware, ids, segs));
        using var dir = new TempDir();
        LlamaCheckpoint.Save(plain, dir["plain"]);
        LlamaCheckpoint.Save(aware, dir["aware"]);
        using var a = LoadedModel.Load(dir["plain"], requireTokenizer: false);
        using var b = LoadedModel.Load(dir["aware"], requireTokenizer: false);
        Assert.NotNull(b.Model.InstructionAware?.AttentionBias);
        var bytes = segs.Select(s => (byte)s).ToArray();
        Assert.Equal(Decode(a.Model, ids, bytes), Decode(b.Model, ids, bytes));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void SaveLoadScoreReproducesTheTrainingLogitsAndTheCacheChangesNothing(int window)
    {
        var (ids, segs) = Sequence();
        var m = Model(true, perturb: true, window);
        var train = TrainingLogits(m, ids, segs);
        using var dir = new TempDir();
        LlamaCheckpoint.Save(m, dir.Path);
        using var loaded = LoadedModel.Load(dir.Path, requireTokenizer: false);
        var bytes = segs.Select(s => (byte)s).ToArray();
        var scored = Scorer.Score(loaded.Model, [ids], keepLogits: true, segments: [bytes])[0].Logits!;
        for (int i = 0; i < train.Length; i++) Assert.True(Math.Abs(train[i] - scored[i]) <= 1e-5, $"logit {i}: training {train[i]}, score {scored[i]}");
        var decoded = Decode(loaded.Model, ids, bytes);
        for (int i = 0; i < train.Length; i++) Assert.True(Math.Abs(train[i] - decoded[i]) <= 1e-5, $"logit {i}: training {train[i]}, KV cache {decoded[i]}");
        Assert.NotEqual(TrainingLogits(Model(false, false, window), ids, segs), train);   // the bias matters
    }

    [Fact]
    public void CachedGenerationEqualsUncachedGeneration() => CachedEqualsUncached(Model(true, perturb: true));

    [Fact]
    public void AFileMissingALayersBiasIsRefusedNamingTheTensor()
    {
        using var dir = new TempDir();
        LlamaCheckpoint.Save(Model(true, false), dir.Path);
        var deeper = Tiny() with { NumHiddenLayers = 3 };
        var e = Assert.Throws<InvalidDataException>(() => InstructionAwareFile.TryLoad(dir.Path, deeper));
        Assert.Contains("instruction_aware.attention_bias.2", e.Message);
    }

    [Fact]
    public void TheBiasTrainsUnderLoraIsExportedAndTheInferencePathReproducesIt()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={modelDir}", $"data.path={data}", "data.max_seq_len=128",
            RecipeSetupTests.ShortTemplate, "model.instruction_aware.biased_attention=true", "training.method=lora",
            $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}", "training.max_steps=3",
            "training.learning_rate=5e-2", "logging.tensor_board=false"]);
        var recipe = FineTuneRecipe.Setup(config);
        Assert.Contains("instruction_aware.attention_bias.0", recipe.Trainer.Trainable.Select(t => t.Name));
        var summary = recipe.Train(quiet: true);
        Assert.Contains(recipe.Model.GetParameter("instruction_aware.attention_bias.0").ToArray(), v => v != 0);   // it trained
        using (var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(summary.ExportDir, "instructtune.json"))))
            Assert.True(json.RootElement.GetProperty("instruction_aware").GetProperty("biased_attention").GetBoolean());

        int[] ids = [5, 17, 42, 8, 99, 3, 7];
        int[] segs = [0, 1, 1, 2, 0, 3, 3];
        float[] expected;
        using (Tape.Record(recordGrad: false)) expected = TrainingLogits(recipe.Model, ids, segs);
        using var loaded = LoadedModel.Load(modelDir, summary.ExportDir);
        var got = loaded.Model.Forward([new SequenceChunk(loaded.Model.CreateCache(ids.Length), ids, AllLogits: true, Segments: [.. segs.Select(s => (byte)s)])]);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-4, $"logit {i}: trained {expected[i]}, loaded {got[i]}");
        Assert.Contains(global::InstructTune.Recipes.Ablation.AblationVariants.All, v => v.Name == "biased_attention");
    }
}
