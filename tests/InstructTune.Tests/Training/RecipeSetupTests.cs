using InstructTune.Checkpoints;
using InstructTune.Models;
using InstructTune.Recipes;
using InstructTune.Tokenizers.Training;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Training;

/// <summary>Everything wrong with a training request is refused in setup, before the first step, naming what is wrong.</summary>
public class RecipeSetupTests
{
    /// <summary>A prompt format short enough for the tiny model's 128 positions (alpaca's header alone is longer).</summary>
    internal const string ShortTemplate = "data.template=Q: {instruction}{input} A: {output}";

    internal static (string ModelDir, string DataPath) Workspace()
    {
        var dir = Directory.CreateTempSubdirectory("setup").FullName;
        var lines = Enumerable.Range(0, 20).Select(i => $"{{\"instruction\":\"Say {i}.\",\"input\":\"\",\"output\":\"{i}\"}}").ToList();
        var data = Path.Combine(dir, "train.jsonl");
        File.WriteAllLines(data, lines);
        var modelDir = Path.Combine(dir, "base");
        var options = new BpeTrainerOptions(VocabSize: 280, MinFrequency: 1);
        ByteLevelBpeTrainer.Save(ByteLevelBpeTrainer.Train(lines, options), options, modelDir);
        RandomCheckpoint.Create(new LlamaConfig { VocabSize = 280, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 1,
            NumAttentionHeads = 2, NumKeyValueHeads = 2, MaxPositionEmbeddings = 128 }, modelDir, 1, DType.F32);
        return (modelDir, data);
    }

    private static string SetupError(params string[] overrides)
    {
        var config = ConfigLoader.LoadFromString<TrainConfig>("", ["data.max_seq_len=128", ShortTemplate, .. overrides]);
        return Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(config)).Message;
    }

    [Fact]
    public void MissingModelOrDatasetPathsAndBadSettingsNameTheKey()
    {
        var (model, data) = Workspace();
        var run = $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}";
        Assert.Contains("max_position_embeddings 128", SetupError($"model.path={model}", $"data.path={data}", "data.max_seq_len=512", run));
        Assert.Contains("model.path", SetupError($"data.path={data}", run));
        Assert.Contains("model.path", SetupError("model.path=/nonexistent/model", $"data.path={data}", run));
        Assert.Contains("data.path", SetupError($"model.path={model}", "data.path=/nonexistent/train.jsonl", run));
        Assert.Contains("data.format", SetupError($"model.path={model}", $"data.path={data}", "data.format=yaml", run));
        // Out-of-range values are refused by the binder, before setup.
        Assert.Contains("training.micro_batch_size", Assert.Throws<ConfigException>(() =>
            ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={model}", "training.micro_batch_size=0"])).Message);
        Assert.Contains("lora.target_modules", SetupError($"model.path={model}", $"data.path={data}", "lora.target_modules=[no_such_proj]", run));
    }

    [Fact]
    public void AValidRequestSetsUpAndTrainsOnlyTheAdapter()
    {
        var (model, data) = Workspace();
        var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={model}", $"data.path={data}",
            $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}", "training.max_steps=2", "logging.tensor_board=false",
            "data.max_seq_len=128", ShortTemplate]);
        var recipe = FineTuneRecipe.Setup(config);
        Assert.All(recipe.Trainer.Trainable, t => Assert.Contains(".lora_", t.Name));
        var summary = recipe.Train(quiet: true);
        Assert.Equal(2, summary.Steps);
        Assert.True(File.Exists(Path.Combine(summary.ExportDir, "adapter_model.safetensors")));
        Assert.True(double.IsFinite(summary.FinalLoss));
    }
}
