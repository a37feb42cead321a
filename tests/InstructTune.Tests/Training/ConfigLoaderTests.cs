using InstructTune.Training.Config;

namespace InstructTune.Tests.Training;

public class ConfigLoaderTests
{
    [Fact]
    public void EmptyConfigGivesTheDefaultsThatRun()
    {
        var config = ConfigLoader.LoadFromString<TrainConfig>("");
        Assert.Equal(TuningMethod.Lora, config.Training.Method);
        Assert.Equal(8, config.Lora.Rank);
        Assert.Equal(7, config.Lora.TargetModules.Count);
    }

    [Fact]
    public void YamlValuesAndOverridesAreTyped()
    {
        const string yaml = """
            training:
              method: qlora
              learning_rate: 1.5e-4
              lr_scheduler: linear
            lora:
              target_modules: [q_proj, v_proj]
            loss:
              task_weights: {summarize: 2.0, count: 0.5}
            """;
        var config = ConfigLoader.LoadFromString<TrainConfig>(yaml,
            ["training.micro_batch_size=16", "lora.use_rslora=true", "lora.target_modules=[o_proj]", "model.path=/tmp/m"]);
        Assert.Equal(TuningMethod.Qlora, config.Training.Method);
        Assert.Equal(1.5e-4, config.Training.LearningRate);
        Assert.Equal(LrSchedule.Linear, config.Training.LrScheduler);
        Assert.Equal(16, config.Training.MicroBatchSize);
        Assert.True(config.Lora.UseRslora);
        Assert.Equal(["o_proj"], config.Lora.TargetModules);
        Assert.Equal("/tmp/m", config.Model.Path);
        Assert.Equal(2.0, config.Loss.TaskWeights!["summarize"]);
    }

    [Theory]
    [InlineData("training:\n  learning_rat: 0.1\n", "training.learning_rat")]
    [InlineData("trainin:\n  epochs: 1\n", "trainin")]
    [InlineData("training:\n  epochs: many\n", "training.epochs")]
    [InlineData("training:\n  method: sgd-magic\n", "training.method")]
    [InlineData("lora:\n  target_modules: q_proj\n", "lora.target_modules")]
    [InlineData("training: 3\n", "training")]
    public void UnknownKeysAndWrongTypesNameTheKey(string yaml, string key)
    {
        var error = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFromString<TrainConfig>(yaml));
        Assert.Contains($"'{key}'", error.Message);
    }

    [Fact]
    public void OverrideOfAnUnknownKeyIsRefused()
    {
        var error = Assert.Throws<ConfigException>(() =>
            ConfigLoader.LoadFromString<TrainConfig>("", ["training.lr=0.1"]));
        Assert.Contains("'training.lr'", error.Message);
    }

    [Fact]
    public void EffectiveConfigRoundTripsThroughYaml()
    {
        var config = ConfigLoader.LoadFromString<TrainConfig>("",
            ["training.learning_rate=3e-5", "lora.target_modules=[q_proj]", "data.path=a \"quoted\" path",
             "loss.task_weights={x: 1.5}"]);
        var yaml = ConfigLoader.ToYaml(config);
        var again = ConfigLoader.LoadFromString<TrainConfig>(yaml);
        Assert.Equal(yaml, ConfigLoader.ToYaml(again));
        Assert.Equal(3e-5, again.Training.LearningRate);
        Assert.Equal("a \"quoted\" path", again.Data.Path);
        Assert.Equal(1.5, again.Loss.TaskWeights!["x"]);
    }
}

public class ShippedConfigTests
{
    public static TheoryData<string> Configs()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.EnumerateFiles(Path.Combine(TestPaths.RepoRoot, "configs"), "*.yaml").Order()) data.Add(Path.GetFileName(f));
        return data;
    }

    [Theory, MemberData(nameof(Configs))]
    public void EveryShippedConfigParsesAndNamesItsCommand(string file)
    {
        var path = Path.Combine(TestPaths.RepoRoot, "configs", file);
        var config = ConfigLoader.Load<TrainConfig>(path);
        Assert.Contains($"--config configs/{file}", File.ReadLines(path).First(l => l.StartsWith("# Run:")));
        Assert.True(config.Training.LearningRate > 0);
    }
}
