using InstructTune.Models;
using InstructTune.Recipes;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Recipes;

/// <summary>
/// The data-recipe example configs in configs/ (issue 12): each starts with the command that runs it, parses with
/// the one binder, and trains a few steps on a tiny random model with the tokenizer it is written for (the shared
/// test data stands in for ../shared/testdata).
/// </summary>
public class ExampleConfigTests
{
    public static TheoryData<string, string> Configs() => new()
    {
        { "alpaca-lora.yaml", "llama2" },
        { "mixture.yaml", "llama2" },
        { "curriculum.yaml", "llama2" },
        { "chat-qwen.yaml", "qwen2.5" },
        { "continual.yaml", "llama2" },
    };

    private static readonly Dictionary<string, string> Models = new();

    private static string TinyModel(string tokenizer, int vocab)
    {
        lock (Models)
        {
            if (Models.TryGetValue(tokenizer, out var dir)) return dir;
            dir = Directory.CreateTempSubdirectory("tiny-" + tokenizer).FullName;
            RandomCheckpoint.Create(new LlamaConfig { VocabSize = vocab, HiddenSize = 8, IntermediateSize = 16, NumHiddenLayers = 1,
                NumAttentionHeads = 2, NumKeyValueHeads = 1, MaxPositionEmbeddings = 2048 }, dir, 1, global::InstructTune.Checkpoints.DType.F32);
            return Models[tokenizer] = dir;
        }
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void ExampleConfigParsesAndTrainsAFewSteps(string file, string tokenizer)
    {
        var path = Path.Combine(TestPaths.RepoRoot, "configs", file);
        var text = File.ReadAllText(path);
        Assert.StartsWith($"# Run: itune train --config configs/{file}", text);
        var yaml = text.Replace("../shared/testdata", TestPaths.SharedTestData());
        var tokDir = TestPaths.SharedTestData("tokenizers", tokenizer);
        var vocab = global::InstructTune.Tokenizers.TokenizerLoader.Load(tokDir).VocabSize;
        var run = Directory.CreateTempSubdirectory("example-run").FullName;
        var config = ConfigLoader.LoadFromString<TrainConfig>(yaml, [$"model.path={TinyModel(tokenizer, vocab)}", $"model.tokenizer={tokDir}",
            $"checkpoint.output_dir={run}", "training.max_steps=2", "training.micro_batch_size=2", "training.gradient_accumulation_steps=1",
            "logging.tensor_board=false", "lora.rank=2"]);
        var recipe = FineTuneRecipe.Setup(config);
        Assert.True(recipe.Data!.LearnedTokens > 0);
        var summary = recipe.Train(quiet: true);
        Assert.Equal(2, summary.Steps);
        Assert.True(double.IsFinite(summary.FinalLoss));
        Assert.True(File.Exists(Path.Combine(summary.ExportDir, "instructtune.json")));
    }
}
