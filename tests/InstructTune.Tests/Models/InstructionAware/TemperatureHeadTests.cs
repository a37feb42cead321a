using System.Text.Json;
using InstructTune.Data.Batching;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Models.InstructionAware;
using InstructTune.Recipes;
using InstructTune.Tests.Checkpoints;
using InstructTune.Tests.Training;
using InstructTune.Training.Config;
using InstructTune.Training.Losses;
using static InstructTune.Tests.Models.InstructionAware.InstructionAwareTests;

namespace InstructTune.Tests.Models.InstructionAware;

/// <summary>
/// The temperature head (model.instruction_aware.temperature_targets): the training objective's loss, the predicted
/// temperatures and the gradients against PyTorch written from the formula (tools/golden/instruction_aware.py
/// "temperature"), finite differences, identity of the logits, save → load → predict, the two-task toy set
/// (targets 0.2 and 1.0 learned within 0.05) and `itune generate --temperature auto`.
/// </summary>
public class TemperatureHeadTests
{
    private static readonly InstructionAwareOptions WithHead = new() { TemperatureRange = (0.05f, 2f) };

    private static JsonElement Fixture() => Load("temperature");

    /// <summary>The fixture's batch as the data pipeline gives it; document d of the batch (row-major) has task d.</summary>
    private static Batch GoldenBatch(JsonElement root)
    {
        var ids = Ints(root.GetProperty("ids"));
        var docs = Ints(root.GetProperty("documents"));
        var tasks = new int[docs.Length];
        int task = -1;
        for (int i = 0; i < docs.Length; i++)
            tasks[i] = docs[i] < 0 ? -1 : (i % 9 == 0 || docs[i] != docs[i - 1] ? ++task : task);
        return new Batch(2, 9, ids, Ints(root.GetProperty("labels")), Ints(root.GetProperty("positions")), docs,
            [.. Ints(root.GetProperty("segments")).Select(s => (byte)s)], tasks, [[0, 1], [2]], 0);
    }

    private static ObjectiveOptions Objective(JsonElement root) => new(
        TemperatureTargets: [.. root.GetProperty("targets").EnumerateArray().Select(t => t.ValueKind == JsonValueKind.Null ? float.NaN : (float)t.GetDouble())],
        TemperatureWeight: root.GetProperty("mu").GetDouble());

    private static LlamaModel GoldenModel(JsonElement root)
    {
        var model = new LlamaModel(Golden(root.GetProperty("config")));
        HashInit.Initialize(model);
        model.AttachInstructionAware(WithHead);
        foreach (var p in root.GetProperty("params").EnumerateArray()) model.GetParameter(p.GetProperty("name").GetString()!).Load(Floats(p));
        return model;
    }

    [Fact]
    public void LossTemperaturesAndGradientsMatchPyTorch()
    {
        var root = Fixture();
        var model = GoldenModel(root);
        var b = GoldenBatch(root);
        var o = Objective(root);
        var counts = InstructionObjective.Count([b], o, 3);
        Assert.Equal(2, counts.TemperatureDocuments);   // the middle document has no target
        using (var tape = Tape.Record())
        {
            var r = InstructionObjective.Forward(model, b, counts, o, firstMicroBatch: true);
            tape.Backward(r.Loss);
            double loss = root.GetProperty("loss").GetDouble();
            Assert.True(Math.Abs(r.Loss.Item() - loss) <= 1e-5 * loss, $"loss: torch {loss}, ours {r.Loss.Item()}");
        }
        GradientsMatch(model, root);
        var batch = InstructionObjective.ToModelBatch(b);
        var hidden = model.Forward(batch, new LlamaForwardOptions { HiddenOnly = true }).Hidden!;
        var taus = TemperatureHead.Predict(model.InstructionAware!.TemperatureHead!, hidden, InstructionSpans.From(batch)!).ToArray();
        var expected = root.GetProperty("temperatures").EnumerateArray().Select(t => t.GetDouble()).ToArray();
        for (int d = 0; d < 3; d++) Assert.True(Math.Abs(taus[d] - expected[d]) <= 1e-5 * Math.Max(1, expected[d]), $"τ_{d}: torch {expected[d]}, ours {taus[d]}");
    }

    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        var root = Fixture();
        var model = GoldenModel(root);
        var b = GoldenBatch(root);
        var o = Objective(root);
        var counts = InstructionObjective.Count([b], o, 3);
        var ps = new Tensor[] { model.GetParameter("instruction_aware.temperature_head.weight"), model.GetParameter("instruction_aware.temperature_head.bias"),
            model.GetParameter("model.layers.1.mlp.down_proj.weight") };
        var r = GradCheck.Check(_ => InstructionObjective.Forward(model, b, counts, o, true).Loss, ps, eps: 3e-3, maxPerInput: 8);
        Assert.True(r.MaxError < 2e-2, r.ToString());
    }

    private static LlamaModel Tiny(bool head, bool perturb = false)
    {
        var m = new LlamaModel(InstructionAwareTests.Tiny());
        m.InitializeWeights(3, 0.3f);
        if (head && m.AttachInstructionAware(WithHead).TemperatureHead is { } h && perturb) new Rng(9).Uniform(h.Weight.Span, -1f, 1f);
        return m;
    }

    [Fact]
    public void TheHeadChangesNoLogitAndItsPredictionSurvivesSaveAndLoad()
    {
        var (ids, segs) = Sequence();
        var plain = Tiny(false);
        var aware = Tiny(true, perturb: true);
        Assert.Equal(TrainingLogits(plain, ids, segs), TrainingLogits(aware, ids, segs));
        using var dir = new TempDir();
        LlamaCheckpoint.Save(plain, dir["plain"]);
        LlamaCheckpoint.Save(aware, dir["aware"]);
        using var a = LoadedModel.Load(dir["plain"], requireTokenizer: false);
        using var m = LoadedModel.Load(dir["aware"], requireTokenizer: false);
        var bytes = segs.Select(s => (byte)s).ToArray();
        Assert.Equal(Decode(a.Model, ids, bytes), Decode(m.Model, ids, bytes));
        Assert.False(a.Model.HasTemperatureHead);
        Assert.True(m.Model.HasTemperatureHead);

        // One document: training's τ = softplus(w·p + b) against the loaded model's prediction from the prompt.
        var batch = new LlamaBatch(new IntTensor(ids, 1, ids.Length)) { Segments = new IntTensor(segs, 1, segs.Length) };
        var hidden = aware.Forward(batch, new LlamaForwardOptions { HiddenOnly = true }).Hidden!;
        float trained = TemperatureHead.Predict(aware.InstructionAware!.TemperatureHead!, hidden, InstructionSpans.From(batch)!).ToArray()[0];
        Assert.InRange(trained, 0.05f, 2f);
        Assert.True(Math.Abs(trained - m.Model.PredictTemperature(ids, bytes)) <= 1e-5, $"trained {trained}, loaded {m.Model.PredictTemperature(ids, bytes)}");
    }

    private static readonly string[] Countries = ["France", "Spain", "Italy", "Japan", "Peru", "Chile", "Egypt", "Kenya"];
    private static readonly string[] Topics = ["the sea", "a cat", "rain", "the moon", "a tree", "winter", "bread", "a river"];

    [Fact]
    public void OnATwoTaskToySetItLearnsBothTargetsAndGenerateAutoUsesThem()
    {
        var (modelDir, _) = RecipeSetupTests.Workspace();
        var dir = Directory.CreateTempSubdirectory("temp").FullName;
        var data = Path.Combine(dir, "toy.jsonl");
        File.WriteAllLines(data, Countries.Select(c => $"{{\"instruction\":\"What is the capital of {c}?\",\"input\":\"\",\"output\":\"A city.\",\"task\":\"factual\"}}")
            .Concat(Topics.Select(t => $"{{\"instruction\":\"Write a short poem about {t}.\",\"input\":\"\",\"output\":\"Soft words.\",\"task\":\"creative\"}}")));
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={modelDir}", $"data.path={data}", "data.max_seq_len=128",
            RecipeSetupTests.ShortTemplate, "training.method=lora", "model.instruction_aware.temperature_targets={factual: 0.2, creative: 1.0}", "model.instruction_aware.temperature_weight=10",
            $"checkpoint.output_dir={Path.Combine(dir, "run")}", "training.max_steps=150", "training.micro_batch_size=8", "training.lr_scheduler=constant",
            "training.learning_rate=3e-2", "logging.tensor_board=false"]);
        var recipe = FineTuneRecipe.Setup(config);
        var summary = recipe.Train(quiet: true);
        var metrics = File.ReadAllLines(Path.Combine(summary.RunDir, "metrics.jsonl"));
        Assert.Contains(metrics, l => l.Contains("temperature_loss"));

        foreach (var (prompt, target) in new[] { ("What is the capital of Peru?", 0.2), ("Write a short poem about rain.", 1.0) })
        {
            var (rc, output, err) = TestConsole.Run("generate", "--model", modelDir, "--adapter", summary.ExportDir, "--prompt", prompt,
                "--temperature", "auto", "--max-new-tokens", "3", "--seed", "1", "--json");
            Assert.True(rc == 0, err);
            Assert.Contains("temperature head", err);
            double tau = JsonDocument.Parse(output.Trim().Split('\n')[^1]).RootElement.GetProperty("temperature").GetDouble();
            Assert.True(Math.Abs(tau - target) <= 0.05, $"\"{prompt}\": predicted {tau}, target {target}; last step: {metrics.Last(l => l.Contains("temperature_loss"))}");
        }
        var plain = TestConsole.Run("generate", "--model", modelDir, "--prompt-ids", "1,2,3", "--temperature", "auto");
        Assert.Equal(2, plain.Rc);
        Assert.Contains("temperature head", plain.Err);
    }

    [Fact]
    public void ATargetForATaskTheDataDoesNotHaveIsRefusedNamingTheKey()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={modelDir}", $"data.path={data}", "data.max_seq_len=128",
            RecipeSetupTests.ShortTemplate, "model.instruction_aware.temperature_targets={nosuch: 0.5}",
            $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}"]);
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(config));
        Assert.Contains("model.instruction_aware.temperature_targets", e.Message);
    }
}
