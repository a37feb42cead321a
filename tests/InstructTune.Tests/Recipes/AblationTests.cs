using System.Text.Json;
using InstructTune.Recipes.Ablation;
using InstructTune.Tests.Training;

namespace InstructTune.Tests.Recipes;

/// <summary>itune ablate's recipe: every variant × seed trains from the same config; one JSON + HTML report with
/// mean ± std, parameter counts and step times; bad input refused before any training.</summary>
public class AblationTests
{
    private static string ConfigFile(string modelDir, string data)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("ablate-cfg").FullName, "recipe.yaml");
        File.WriteAllText(path, $"""
            model:
              path: {modelDir}
            data:
              path: {data}
              max_seq_len: 128
              template: "{RecipeSetupTests.ShortTemplate.Split('=', 2)[1]}"
              validation_fraction: 0.2
            training:
              max_steps: 2
              learning_rate: 0.01
            """);
        return path;
    }

    [Fact]
    public void EveryVariantAndSeedTrainsIntoOneReport()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var cfg = ConfigFile(modelDir, data);
        var outDir = Path.Combine(Directory.CreateTempSubdirectory("ablate").FullName, "out");
        var report = AblationRecipe.Run(cfg, [], AblationVariants.Parse("baseline,segments"), 2, outDir);

        Assert.True(report.Complete);
        Assert.Equal(4, report.Runs.Count);
        Assert.Equal([42, 43], report.Runs.Where(r => r.Variant == "segments").Select(r => r.Seed));
        var b = report.Variants.Single(v => v.Variant == "baseline");
        var s = report.Variants.Single(v => v.Variant == "segments");
        Assert.Equal(b.TrainableParams + 4 * 16, s.TrainableParams);              // the (4, hidden) segment table
        Assert.Equal(0.0, b.StepTimeOverhead);
        Assert.NotNull(s.EvalLossMean);
        var evals = report.Runs.Where(r => r.Variant == "segments").Select(r => r.EvalLoss!.Value).ToList();
        Assert.Equal(evals.Average(), s.EvalLossMean!.Value, 9);
        double std = Math.Sqrt(evals.Sum(x => (x - evals.Average()) * (x - evals.Average())) / (evals.Count - 1));
        Assert.Equal(std, s.EvalLossStd!.Value, 9);
        Assert.True(File.Exists(Path.Combine(report.Runs[3].RunDir, "adapter", "instruction_aware.safetensors")));

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, AblationRecipe.JsonFile)));
        Assert.Equal(2, json.RootElement.GetProperty("variants").GetArrayLength());
        var html = File.ReadAllText(Path.Combine(outDir, AblationRecipe.HtmlFile));
        Assert.Contains("segments", html);
        Assert.Contains("<svg", html);

        // The same folder again is refused: it holds this ablation.
        Assert.Throws<InstructTune.Common.InputException>(() => AblationRecipe.Run(cfg, [], AblationVariants.Parse("baseline"), 1, outDir));
    }

    [Fact]
    public void TheQuickstartAblationConfigBindsForEveryBuiltInVariant()
    {
        var path = Path.Combine(TestPaths.RepoRoot, "configs", "ablation-quickstart.yaml");
        Assert.StartsWith("# Quickstart-scale ablation", File.ReadAllText(path));
        foreach (var v in AblationVariants.Parse("baseline,segments,gates,segments_gates"))
        {
            var c = InstructTune.Training.Config.ConfigLoader.Load<InstructTune.Training.Config.TrainConfig>(path, [.. v.Overrides]);
            InstructTune.Recipes.FineTuneRecipe.Validate(c);
            Assert.Equal(150, c.Training.MaxSteps);
        }
    }

    [Fact]
    public void UnknownVariantsAndBadOverridesAreRefusedBeforeTraining()
    {
        var e = Assert.Throws<InstructTune.Common.InputException>(() => AblationVariants.Parse("baseline,nope"));
        Assert.Contains("nope", e.Message);
        Assert.Contains("segments_gates", e.Message);
        Assert.Throws<ArgumentException>(() => AblationVariants.Register("Bad Name", "x"));
        AblationVariants.Register("test_text_format", "refused: text data has no segments", "data.format=text", "model.instruction_aware.segment_embeddings=true");
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var outDir = Path.Combine(Directory.CreateTempSubdirectory("ablate").FullName, "out");
        var ce = Assert.Throws<InstructTune.Training.Config.ConfigException>(() =>
            AblationRecipe.Run(ConfigFile(modelDir, data), [], AblationVariants.Parse("baseline,test_text_format"), 1, outDir));
        Assert.Contains("variant test_text_format", ce.Message);
        Assert.Contains("model.instruction_aware", ce.Message);
        Assert.False(Directory.Exists(outDir));                                      // nothing trained, nothing written
    }
}
