using System.Text.Json;
using InstructTune.Data.Mixing;
using InstructTune.Recipes;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Recipes;

/// <summary>
/// Issue 12 acceptance: the mixture a recipe asks for is the one sampled. Expected rates are computed here from the
/// formulas in docs/ARCHITECTURE.md ("Datasets and mixing"), not from the planner: proportional with caps
/// r_i ∝ min(n_i, c_i), temperature r_i ∝ min(n_i, c_i)^(1/T), fixed weights r_i ∝ w_i; over one epoch of
/// N = Σ min(n_i, c_i) draws the count of dataset i is Binomial(N, r_i), so it must lie within 4 standard deviations
/// of N·r_i. Pre-training text at ratio p gives p of the tokens; stage 2 replays the stated share of stage 1.
/// </summary>
public class MixtureRecipeTests
{
    private static readonly int[] Sizes = [60, 900, 4000];

    private static List<PlanSource> Sources(int[] caps, double[] weights, int stage = 1) =>
        Sizes.Select((n, i) => new PlanSource($"d{i}", stage, Enumerable.Repeat(10, n).ToArray(), caps[i], weights[i])).ToList();

    private static void AssertWithinSampling(int[] counts, double[] raw, long n, string what)
    {
        double sum = raw.Sum();
        for (int i = 0; i < counts.Length; i++)
        {
            double r = raw[i] / sum, mean = n * r, sd = Math.Sqrt(n * r * (1 - r));
            Assert.True(Math.Abs(counts[i] - mean) <= 4 * sd + 1, $"{what}: dataset {i} drew {counts[i]}, expected {mean:F1} ± {4 * sd:F1}");
        }
    }

    private static int[] Counts(StagePlan plan, int sources) =>
        Enumerable.Range(0, sources).Select(i => plan.Draws.Count(d => d.Source == i)).ToArray();

    [Fact]
    public void CapTemperatureAndWeightsSampleTheStatedRates()
    {
        int[] caps = [0, 500, 1000];
        double[] ones = [1, 1, 1];
        var capped = MixPlan.Build(Sources(caps, ones), MixStrategy.ExamplesProportional, 1, 0, [new PlanStage(1, 0)], seed: 3).Single();
        double[] effective = [60, 500, 1000];
        Assert.Equal(1560, capped.Draws.Count);
        AssertWithinSampling(Counts(capped, 3), effective, 1560, "cap");

        var hot = MixPlan.Build(Sources(caps, ones), MixStrategy.Temperature, 2, 0, [new PlanStage(1, 0)], seed: 4).Single();
        AssertWithinSampling(Counts(hot, 3), effective.Select(x => Math.Sqrt(x)).ToArray(), 1560, "temperature 2");

        double[] weights = [5, 1, 2];
        var fixedWeights = MixPlan.Build(Sources([0, 0, 0], weights), MixStrategy.Weights, 1, 0, [new PlanStage(1, 0)], seed: 5).Single();
        Assert.Equal(4960, fixedWeights.Draws.Count);
        AssertWithinSampling(Counts(fixedWeights, 3), weights, 4960, "weights");
        // A small dataset with a large weight is drawn without replacement, then reshuffled: every example appears.
        Assert.Equal(60, fixedWeights.Draws.Where(d => d.Source == 0).Select(d => d.Index).Distinct().Count());
    }

    [Fact]
    public void PretrainingTextTakesTheStatedShareOfTokens()
    {
        var rng = new Random(1);
        var task = new PlanSource("task", 1, Enumerable.Range(0, 800).Select(_ => rng.Next(20, 60)).ToArray());
        var text = new PlanSource("text", 1, Enumerable.Range(0, 300).Select(_ => rng.Next(100, 300)).ToArray(), PlainText: true);
        foreach (var p in new[] { 0.1, 0.25, 0.5 })
        {
            var plan = MixPlan.Build([task, text], MixStrategy.ExamplesProportional, 1, p, [new PlanStage(1, 0)], seed: 9).Single();
            long plainTokens = plan.Draws.Where(d => d.Source == 1).Sum(d => (long)text.Lengths[d.Index]);
            long taskTokens = plan.Draws.Where(d => d.Source == 0).Sum(d => (long)task.Lengths[d.Index]);
            Assert.Equal(800, plan.Draws.Count(d => d.Source == 0));
            double share = (double)plainTokens / (plainTokens + taskTokens);
            // Whole examples: the share is off by at most half of one plain example's tokens.
            Assert.True(Math.Abs(share - p) <= 150.0 / (plainTokens + taskTokens) + 1e-9, $"ratio {p}: plain share {share:F4}");
        }
    }

    [Fact]
    public void StageTwoReplaysTheStatedShareOfStageOne()
    {
        var s1 = new PlanSource("stage1", 1, Enumerable.Repeat(10, 500).ToArray());
        var s2 = new PlanSource("stage2", 2, Enumerable.Repeat(10, 2000).ToArray());
        var plans = MixPlan.Build([s1, s2], MixStrategy.ExamplesProportional, 1, 0, [new PlanStage(1, 0), new PlanStage(1, 0.2)], seed: 11);
        Assert.Equal(2, plans.Count);
        Assert.All(plans[0].Draws, d => Assert.Equal(0, d.Source));
        int replayed = plans[1].Draws.Count(d => d.Source == 0);
        Assert.Equal(2000, plans[1].Draws.Count);
        AssertWithinSampling([replayed, 2000 - replayed], [0.2, 0.8], 2000, "replay 0.2");
    }

    private static string WriteAlpaca(string dir, string name, int n)
    {
        var path = Path.Combine(dir, name + ".jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, n).Select(i => JsonSerializer.Serialize(new { instruction = $"{name} task {i}: echo", input = "", output = $"{name} {i}" })));
        return path;
    }

    [Fact]
    public void RecipeKeysReachTheMixtureAndTheStages()
    {
        var dir = Directory.CreateTempSubdirectory("mixrecipe").FullName;
        var a = WriteAlpaca(dir, "alpha", 40);
        var b = WriteAlpaca(dir, "beta", 300);
        var c = WriteAlpaca(dir, "gamma", 120);
        var tokDir = TestPaths.SharedTestData("tokenizers", "llama2");
        var tok = TokenizerLoader.Load(tokDir);
        var config = ConfigLoader.LoadFromString<TrainConfig>($$"""
            model: {tokenizer: {{tokDir}}}
            data:
              validation_fraction: 0
              max_seq_len: 128
              mixing: temperature
              temperature: 2
              datasets:
                - {path: {{a}}, format: alpaca}
                - {path: {{b}}, format: alpaca, cap: 100}
                - {path: {{c}}, format: alpaca, stage: 2}
              stages:
                - {epochs: 2}
                - {epochs: 1, replay: 0.25}
            """);
        var prepared = PrepareRecipe.Run(config, tok, tokDir, Path.Combine(dir, "out"));
        Assert.Equal(2, prepared.Stages.Count);
        // Stage 1: two epochs of N = 40 + min(300, 100) = 140 draws at r ∝ √40 : √100.
        var s1 = prepared.StageReports[0];
        Assert.Equal(280, s1.Examples);
        Assert.Equal(Math.Sqrt(40) / (Math.Sqrt(40) + 10), s1.ByDataset["alpha"].Rate, 12);
        AssertWithinSampling([s1.ByDataset["alpha"].Examples, s1.ByDataset["beta"].Examples], [Math.Sqrt(40), 10], 280, "recipe stage 1");
        // Stage 2: 120 draws, a quarter replayed from stage 1.
        var s2 = prepared.StageReports[1];
        Assert.Equal(120, s2.Examples);
        int replayed = (s2.ByDataset.GetValueOrDefault("alpha")?.Examples ?? 0) + (s2.ByDataset.GetValueOrDefault("beta")?.Examples ?? 0);
        AssertWithinSampling([replayed, 120 - replayed], [0.25, 0.75], 120, "recipe replay");
        Assert.True(File.Exists(Path.Combine(dir, "out", PrepareRecipe.ReportFile)));
    }
}
