using InstructTune.Data.Batching;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Models.InstructionAware;
using InstructTune.Recipes;
using InstructTune.Tests.Training;
using InstructTune.Training.Config;
using InstructTune.Training.Losses;
using static InstructTune.Tests.Models.InstructionAware.InstructionAwareTests;

namespace InstructTune.Tests.Models.InstructionAware;

/// <summary>
/// The dual-head (task classifier) and instruction-representation losses through the training objective, against
/// PyTorch written from their formulas (tools/golden/instruction_losses.py → tests/fixtures/instruction_aware/losses.json),
/// finite differences, and from a recipe (trained, logged, refused without tasks).
/// </summary>
public class InstructionLossesTests
{
    private static Batch FixtureBatch(System.Text.Json.JsonElement root) => new(2, 9,
        Ints(root.GetProperty("ids")), Ints(root.GetProperty("labels")), Ints(root.GetProperty("positions")),
        Ints(root.GetProperty("documents")), [.. Ints(root.GetProperty("segments")).Select(s => (byte)s)],
        Ints(root.GetProperty("tasks")), [[0, 1], [2]], 0);

    [Fact]
    public void LossAndGradientsMatchPyTorch()
    {
        var root = Load("losses");
        var model = new LlamaModel(Golden(root.GetProperty("config")));
        HashInit.Initialize(model);
        int tasks = root.GetProperty("tasks_count").GetInt32();
        model.AttachInstructionAware(new InstructionAwareOptions { TaskClasses = tasks, RepresentationHead = true });
        foreach (var p in root.GetProperty("params").EnumerateArray()) model.GetParameter(p.GetProperty("name").GetString()!).Load(Floats(p));

        var batch = FixtureBatch(root);
        var o = new ObjectiveOptions(TaskHeadWeight: root.GetProperty("lambda").GetDouble(), RepresentationAlpha: root.GetProperty("alpha").GetDouble());
        var counts = InstructionObjective.Count([batch], o, tasks);
        Assert.Equal(3, counts.TaskDocuments);
        Assert.Equal(3, counts.RepresentationDocuments);
        using var tape = Tape.Record();
        var r = InstructionObjective.Forward(model, batch, counts, o, firstMicroBatch: true);
        tape.Backward(r.Loss);

        void Near(double want, double got, string what) => Assert.True(Math.Abs(got - want) <= 1e-5 * Math.Max(1, Math.Abs(want)), $"{what}: torch {want}, ours {got}");
        Near(root.GetProperty("loss").GetDouble(), r.Loss.Item(), "loss");
        Near(root.GetProperty("task_loss").GetDouble(), r.TaskSum / counts.TaskDocuments, "task loss");
        Near(root.GetProperty("representation_loss").GetDouble(), r.RepresentationSum / (counts.RepresentationDocuments * model.Config.HiddenSize), "representation loss");
        GradientsMatch(model, root);
    }

    [Fact]
    public void HeadGradientsMatchFiniteDifferences()
    {
        var root = Load("losses");
        var model = new LlamaModel(Golden(root.GetProperty("config")));
        HashInit.Initialize(model);
        var ia = model.AttachInstructionAware(new InstructionAwareOptions { TaskClasses = 3, RepresentationHead = true });
        var rng = new Rng(5);
        foreach (var (_, p) in ia.NamedParameters()) rng.Uniform(p.Span, -0.3f, 0.3f);
        var batch = FixtureBatch(root);
        var o = new ObjectiveOptions(TaskHeadWeight: 0.7, RepresentationAlpha: 0.3);
        var counts = InstructionObjective.Count([batch], o, 3);
        var ps = ia.Parameters().Cast<Tensor>().ToArray();
        var check = GradCheck.Check(_ => InstructionObjective.Forward(model, batch, counts, o, true).Loss, ps, eps: 3e-3, maxPerInput: 8);
        Assert.True(check.MaxError < 2e-2, check.ToString());
    }

    private static (string Model, string Data) TaskWorkspace(int taskCount)
    {
        var (modelDir, _) = RecipeSetupTests.Workspace();
        var data = Path.Combine(Path.GetDirectoryName(modelDir)!, "tasks.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 24).Select(i =>
            $"{{\"instruction\":\"{(i % 2 == 0 ? "Say" : "Double")} {i}.\",\"input\":\"\",\"output\":\"{(i % 2 == 0 ? i : 2 * i)}\",\"task\":\"{(i % taskCount == 0 ? "say" : "double")}\"}}"));
        return (modelDir, data);
    }

    private static TrainConfig Config(string model, string data, params string[] extra) =>
        ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={model}", $"data.path={data}", "data.max_seq_len=128", RecipeSetupTests.ShortTemplate,
            $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}", "training.max_steps=3",
            "training.learning_rate=1e-2", "logging.tensor_board=false", .. extra]);

    [Fact]
    public void TheLossesTrainFromTheRecipeAreLoggedAndSavedWithTheVariants()
    {
        var (model, data) = TaskWorkspace(2);
        var recipe = FineTuneRecipe.Setup(Config(model, data, "model.instruction_aware.task_head_weight=0.5", "model.instruction_aware.representation_alpha=0.2"));
        var names = recipe.Trainer.Trainable.Select(t => t.Name).ToList();
        Assert.Contains("instruction_aware.task_head.weight", names);
        Assert.Contains("instruction_aware.representation_head.weight", names);
        var summary = recipe.Train(quiet: true);
        var metrics = File.ReadAllLines(Path.Combine(summary.RunDir, "metrics.jsonl"));
        Assert.Contains(metrics, l => l.Contains("\"task_head_loss\"") && l.Contains("\"representation_loss\"") && l.Contains("\"instruction_loss\""));
        Assert.Contains(recipe.Model.GetParameter("instruction_aware.task_head.weight").ToArray(), v => v != 0);   // it trained
        var w = InstructionAwareFile.TryLoad(summary.ExportDir, recipe.Model.Config)!;   // saved beside the adapter, loadable
        Assert.Equal(2, w.Options.TaskClasses);
        Assert.True(w.Options.RepresentationHead);
    }

    [Fact]
    public void TheDualHeadWithoutTasksIsRefusedNamingTheKey()
    {
        var (model, data) = TaskWorkspace(1);
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, data, "model.instruction_aware.task_head_weight=0.5")));
        Assert.Contains("model.instruction_aware.task_head_weight", e.Message);
    }
}
