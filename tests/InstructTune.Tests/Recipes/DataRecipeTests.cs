using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Data.Records;
using InstructTune.Models;
using InstructTune.Recipes;
using InstructTune.Tokenizers.Training;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Recipes;

/// <summary>
/// Issue 12: train and prepare share one pipeline. A malformed line stops a run with its file and line (and the key
/// that skips it), or is skipped and counted with data.skip_invalid; a prepare output folder is a valid data.path;
/// `itune prepare --dump N` shows the masks.
/// </summary>
public class DataRecipeTests
{
    private static (string Model, string Data, string Dir) Workspace(bool malformed = false)
    {
        var dir = Directory.CreateTempSubdirectory("datarecipe").FullName;
        var lines = Enumerable.Range(0, 24).Select(i => JsonSerializer.Serialize(new { instruction = $"Say {i}.", input = "", output = $"{i}" })).ToList();
        var modelDir = Path.Combine(dir, "base");
        var options = new BpeTrainerOptions(VocabSize: 280, MinFrequency: 1);
        ByteLevelBpeTrainer.Save(ByteLevelBpeTrainer.Train(lines, options), options, modelDir);
        RandomCheckpoint.Create(new LlamaConfig { VocabSize = 280, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 1,
            NumAttentionHeads = 2, NumKeyValueHeads = 2, MaxPositionEmbeddings = 256 }, modelDir, 1, DType.F32);
        if (malformed) lines.Insert(5, "{\"instruction\": \"broken\", \"output\": ");
        var data = Path.Combine(dir, "train.jsonl");
        File.WriteAllLines(data, lines);
        return (modelDir, data, dir);
    }

    private static TrainConfig Config(string model, string data, string dir, params string[] extra) =>
        ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={model}", $"data.path={data}", "data.max_seq_len=200", "data.validation_fraction=0",
            $"checkpoint.output_dir={Path.Combine(dir, "run-" + Guid.NewGuid().ToString("N")[..6])}", "training.max_steps=2", "training.micro_batch_size=2",
            "logging.tensor_board=false", .. extra]);

    [Fact]
    public void AMalformedLineStopsTheRunWithItsLocationOrIsSkippedAndCounted()
    {
        var (model, data, dir) = Workspace(malformed: true);
        var e = Assert.Throws<DataFormatException>(() => FineTuneRecipe.Setup(Config(model, data, dir)));
        Assert.Contains($"{data}:6", e.Message);
        Assert.Contains("data.skip_invalid", e.Message);

        var recipe = FineTuneRecipe.Setup(Config(model, data, dir, "data.skip_invalid=true"));
        var stats = recipe.Data!.Datasets.Single().Stats;
        Assert.Equal(25, stats.RecordsRead);
        Assert.Equal(1, stats.RecordsRejected);
        Assert.Equal(24, stats.RecordsKept);
        Assert.Equal(2, recipe.Train(quiet: true).Steps);

        // The CLI says the same without a stack trace, exit code 2.
        var (rc, _, err) = PreparePipelineCli.Run("train", $"model.path={model}", $"data.path={data}", "data.max_seq_len=200",
            $"checkpoint.output_dir={Path.Combine(dir, "cli-run")}", "training.max_steps=1", "logging.tensor_board=false", "logging.progress=false");
        Assert.Equal(2, rc);
        Assert.Contains($"{data}:6", err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void APrepareFolderIsAValidDataPath()
    {
        var (model, data, dir) = Workspace();
        var prepared = Path.Combine(dir, "prepared");
        var (rc, output, err) = PreparePipelineCli.Run("prepare", $"model.tokenizer={model}", $"data.path={data}", "data.max_seq_len=200",
            "data.validation_fraction=0", "--out", prepared);
        Assert.True(rc == 0, err);
        Assert.Contains("dataset train (stage 1): read 24", output);
        Assert.True(File.Exists(Path.Combine(prepared, PrepareRecipe.PreparedFile)));

        var recipe = FineTuneRecipe.Setup(Config(model, prepared, dir));
        Assert.True(recipe.Data!.Datasets.Single().Stats.CacheReused);
        Assert.Equal(24, recipe.Data.Stages.Single().Count);
        Assert.Equal(2, recipe.Train(quiet: true).Steps);

        // A different length limit than the folder was prepared with is refused, naming both.
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, prepared, dir, "data.max_seq_len=100")));
        Assert.Contains("data.max_seq_len", e.Message);
        Assert.Contains("200", e.Message);
    }

    [Fact]
    public void BadDataKeysNameTheKey()
    {
        var (model, data, dir) = Workspace();
        string Error(params string[] extra) => Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, data, dir, extra))).Message;
        Assert.Contains("data.path and data.datasets", Error($"data.datasets=[{{path: {data}}}]"));
        Assert.Contains("data.pretrain_ratio", Error("data.pretrain_ratio=0.3"));
        Assert.Contains("data.temperature", Error("data.temperature=0"));
        Assert.Contains("data.augment.mask_token", Error("data.augment.instruction_mask=0.5", "data.augment.mask_token=[NOT_A_TOKEN]"));
        Assert.Contains("train_on_eos", Error("data.train_on_eos=none"));
    }
}

/// <summary>Runs the CLI in-process, capturing stdout and stderr.</summary>
internal static class PreparePipelineCli
{
    public static (int Rc, string Output, string Error) Run(params string[] args)
        => TestConsole.Run(args);
}

/// <summary>Issue 12: `itune prepare --dump 3` shows correct masks, checked against the source records.</summary>
public class PrepareDumpTests
{
    private static List<JsonElement> Dump(string dir) =>
        File.ReadAllLines(Path.Combine(dir, "dump.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    [Fact]
    public void AlpacaWithTheLlama2TokenizerLearnsEachOutputAndEos()
    {
        var data = TestPaths.SharedTestData("datasets", "alpaca", "alpaca_5000.json");
        var outDir = Directory.CreateTempSubdirectory("dump-alpaca").FullName;
        var (rc, output, err) = PreparePipelineCli.Run("prepare", "--data", data, "--format", "alpaca", "--tokenizer", TestPaths.SharedTestData("tokenizers", "llama2"),
            "--template", "alpaca", "--out", outDir, "--dump", "3", "--skip-invalid", "data.validation_fraction=0");
        Assert.True(rc == 0, err);
        Assert.Contains("dump.jsonl", output);
        var source = JsonDocument.Parse(File.ReadAllText(data)).RootElement.EnumerateArray().Take(3).ToList();
        var lines = Dump(outDir);
        Assert.Equal(3, lines.Count);
        for (int i = 0; i < 3; i++)
        {
            var expected = source[i].GetProperty("output").GetString()! + "</s>";
            Assert.Equal([expected], lines[i].GetProperty("learned_spans").EnumerateArray().Select(s => s.GetString()));
            var ids = lines[i].GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            var labels = lines[i].GetProperty("labels").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            Assert.Equal(ids.Length, labels.Length);
            Assert.All(labels, (l, t) => Assert.True(l == -100 || l == ids[t]));
            Assert.Contains(source[i].GetProperty("instruction").GetString()!, lines[i].GetProperty("text").GetString());
        }
    }

    [Fact]
    public void ShareGptWithTheQwenChatTemplateLearnsOnlyAssistantTurns()
    {
        var data = TestPaths.SharedTestData("datasets", "sharegpt-fastchat", "dummy_conversation.json");
        var outDir = Directory.CreateTempSubdirectory("dump-chat").FullName;
        var (rc, _, err) = PreparePipelineCli.Run("prepare", "--data", data, "--format", "sharegpt", "--tokenizer", TestPaths.SharedTestData("tokenizers", "qwen2.5"),
            "--template", "chat", "--out", outDir, "--dump", "3", "data.validation_fraction=0", "data.dedup=off");
        Assert.True(rc == 0, err);
        var source = JsonDocument.Parse(File.ReadAllText(data)).RootElement.EnumerateArray().Take(3).ToList();
        var lines = Dump(outDir);
        for (int i = 0; i < 3; i++)
        {
            var turns = source[i].GetProperty("conversations").EnumerateArray().Where(t => t.GetProperty("from").GetString() == "gpt")
                .Select(t => t.GetProperty("value").GetString() + "<|im_end|>");
            Assert.Equal(turns, lines[i].GetProperty("learned_spans").EnumerateArray().Select(s => s.GetString()));
            Assert.StartsWith("<|im_start|>system\nYou are Qwen", lines[i].GetProperty("text").GetString());
        }
    }
}
