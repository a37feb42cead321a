using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Models;
using InstructTune.Recipes;
using InstructTune.Training.Checkpointing;
using InstructTune.Training.Config;
using InstructTune.Training.Logging;

namespace InstructTune.Tests.Training;

/// <summary>Training that never lies (issue 12): each case that ran falsely or lost work is refused or behaves.</summary>
public class RunFolderTests
{
    private static TrainConfig Config(string model, string data, string run, params string[] more) =>
        ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={model}", $"data.path={data}", $"checkpoint.output_dir={run}",
            "training.max_steps=2", "logging.tensor_board=false", "data.max_seq_len=128", RecipeSetupTests.ShortTemplate, .. more]);

    private static string NewRun() => Directory.CreateTempSubdirectory("run").FullName;

    private static void TrainOnce(TrainConfig config, string? resume = null, RunStartOptions? start = null)
    {
        using var recipe = FineTuneRecipe.Setup(config, resume, start: start);
        recipe.Train(quiet: true);
    }

    [Fact]
    public void ZeroLearnedTokensAreRefusedBeforeStepOne()
    {
        var (model, data) = RecipeSetupTests.Workspace();
        var run = NewRun();
        // Alpaca's header alone is longer than 8 tokens: every response is truncated away.
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, data, run, "data.max_seq_len=8")));
        // The data pipeline drops examples left without a response (too-long policy); the recipe refuses a run with none.
        Assert.True(e.Message.Contains("0 learned tokens") || e.Message.Contains("no usable examples"), e.Message);
        Assert.False(Directory.EnumerateDirectories(run, "checkpoint-*").Any());
        Assert.False(File.Exists(Path.Combine(run, RunFolder.LockFile)));   // released on refusal
    }

    [Fact]
    public void MaxSeqLenBeyondThePositionsIsRefused()
    {
        var (model, data) = RecipeSetupTests.Workspace();
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, data, NewRun(), "data.max_seq_len=100000")));
        Assert.Contains("exceeds the model's max_position_embeddings 128", e.Message);
    }

    [Fact]
    public void AReusedFolderIsRefusedUnlessResumedOrOverwritten()
    {
        var (model, data) = RecipeSetupTests.Workspace();
        var run = NewRun();
        TrainOnce(Config(model, data, run));
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, RunFolder.InfoFile))))
        {
            var r = doc.RootElement;
            Assert.StartsWith("sha256:", r.GetProperty("base_model").GetString());
            Assert.Equal(64, r.GetProperty("config_sha256").GetString()!.Length);
            Assert.False(string.IsNullOrEmpty(r.GetProperty("data").GetString()));
            Assert.True(DateTimeOffset.TryParse(r.GetProperty("started_at").GetString(), out _));
        }
        Assert.True(File.Exists(Path.Combine(run, "config.yaml")));
        Assert.False(File.Exists(Path.Combine(run, RunFolder.LockFile)));   // released on exit

        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, data, run)));
        Assert.Contains("already holds a run", e.Message);

        TrainOnce(Config(model, data, run, "training.max_steps=1"), start: new RunStartOptions(Overwrite: true));
        Assert.Equal(["checkpoint-000001"], Directory.EnumerateDirectories(run, "checkpoint-*").Select(Path.GetFileName).ToArray());
        Assert.Equal([1L], MetricSteps(run));
    }

    [Fact]
    public void AConcurrentRunIsRefusedAndAStaleLockTakenOver()
    {
        var (model, data) = RecipeSetupTests.Workspace();
        var run = NewRun();
        // Process 1 (init) is always alive: the folder is in use.
        File.WriteAllText(Path.Combine(run, RunFolder.LockFile), $"pid=1\nhost={Environment.MachineName}\n");
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, data, run)));
        Assert.Contains("in use by process 1", e.Message);
        // The same process holding the folder is concurrent too.
        File.Delete(Path.Combine(run, RunFolder.LockFile));
        using (var first = FineTuneRecipe.Setup(Config(model, data, run)))
            Assert.Contains("in use by another run", Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, data, run))).Message);
        // A lock whose process is gone is stale.
        File.WriteAllText(Path.Combine(run, RunFolder.LockFile), $"pid={int.MaxValue - 7}\nhost={Environment.MachineName}\n");
        var notes = new List<string>();
        using (FineTuneRecipe.Setup(Config(model, data, run), say: notes.Add, start: new RunStartOptions(Overwrite: true))) { }
        Assert.Contains(notes, n => n.Contains("stale lock"));
    }

    [Fact]
    public void ResumeWithAnotherBaseModelIsRefusedUnlessForced()
    {
        var (model, data) = RecipeSetupTests.Workspace();
        var run = NewRun();
        TrainOnce(Config(model, data, run, "checkpoint.save_every_steps=1"));
        // Another base: the same shapes, a different config.json.
        var other = Directory.CreateTempSubdirectory("other-base").FullName;
        foreach (var f in Directory.EnumerateFiles(model)) File.Copy(f, Path.Combine(other, Path.GetFileName(f)));
        File.AppendAllText(Path.Combine(other, "config.json"), " ");
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(other, data, run, "training.max_steps=3"), "latest"));
        Assert.Contains("refusing to resume", e.Message);
        Assert.Contains("model.path", e.Message);
        TrainOnce(Config(other, data, run, "training.max_steps=3"), "latest", new RunStartOptions(ResumeForce: true));
        // Other data is refused too.
        var data2 = Path.Combine(Path.GetDirectoryName(data)!, "other.jsonl");
        File.WriteAllLines(data2, File.ReadAllLines(data).Take(10));
        e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(other, data2, run, "training.max_steps=4"), "latest"));
        Assert.Contains("data: fingerprint", e.Message);
    }

    [Fact]
    public void MetricsAfterAResumeHaveNoDuplicatedSteps()
    {
        var (model, data) = RecipeSetupTests.Workspace();
        var run = NewRun();
        TrainOnce(Config(model, data, run, "training.max_steps=4", "checkpoint.save_every_steps=2", "checkpoint.keep_last=5"));
        Assert.Equal([1L, 2, 3, 4], MetricSteps(run));
        // Resume from step 2: steps 3 and 4 are replayed, and logged once.
        TrainOnce(Config(model, data, run, "training.max_steps=4", "checkpoint.save_every_steps=2", "checkpoint.keep_last=5"),
            Path.Combine(run, "checkpoint-000002"));
        Assert.Equal([1L, 2, 3, 4], MetricSteps(run));
    }

    private static long[] MetricSteps(string run) =>
        File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()).ToArray();

    [Fact]
    public void PruningNeverDeletesTheCheckpointJustWritten()
    {
        var run = NewRun();
        // An older trajectory's checkpoint with a higher step number (the case: pruning went by step number).
        var stale = Path.Combine(run, "checkpoint-000100");
        Directory.CreateDirectory(stale);
        File.WriteAllText(Path.Combine(stale, "COMPLETE"), "100");
        var store = new CheckpointStore(run, keepLast: 1);
        var saved = store.Save(2, dir => File.WriteAllText(Path.Combine(dir, "x"), "2"));
        Assert.True(Directory.Exists(saved));
        Assert.False(Directory.Exists(stale));
        Assert.Equal(saved, store.Latest());
    }

    [Fact]
    public void TruncateAfterDropsReplayedAndTornLines()
    {
        var path = Path.Combine(NewRun(), "metrics.jsonl");
        File.WriteAllText(path, "{\"step\":1,\"loss\":1}\n{\"step\":2,\"loss\":1}\n{\"step\":3,\"loss\":1}\n{\"step\":4,\"lo");
        Assert.Equal(2, JsonlMetricsLogger.TruncateAfter(path, 2));
        Assert.Equal(["{\"step\":1,\"loss\":1}", "{\"step\":2,\"loss\":1}"], File.ReadAllLines(path));
    }
}
