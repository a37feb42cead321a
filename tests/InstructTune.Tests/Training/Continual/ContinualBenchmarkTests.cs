using System.Text.Json;
using InstructTune.Recipes.Continual;
using InstructTune.Training.Continual;

namespace InstructTune.Tests.Training.Continual;

/// <summary>
/// `itune continual` on the tiny model (two stages: add two numbers, then repeat a word; 3 steps each): two strategies ×
/// two seeds. The report's per-strategy means and standard deviations equal those recomputed here from each run's own
/// forgetting.json matrix with the published formulas; a second invocation skips the finished runs; bad input is refused
/// with exit code 2 naming the option or key.
/// </summary>
public class ContinualBenchmarkTests
{
    private static readonly Lazy<string> Dir = new(() =>
    {
        var (dir, modelDir, data) = TinyTrainingWorkspace.Create("continual-bench", records: 80, maxPositions: 256);
        var lines = File.ReadAllLines(data);
        File.WriteAllLines(Path.Combine(dir, "add.jsonl"), lines.Where((_, i) => i % 2 == 0));
        File.WriteAllLines(Path.Combine(dir, "repeat.jsonl"), lines.Where((_, i) => i % 2 == 1));
        File.WriteAllText(Path.Combine(dir, "staged.yaml"), $$"""
            model: {path: {{modelDir}}}
            data:
              template: alpaca
              max_seq_len: 256
              validation_fraction: 0.2
              datasets:
                - {path: {{Path.Combine(dir, "add.jsonl")}}, format: alpaca, stage: 1}
                - {path: {{Path.Combine(dir, "repeat.jsonl")}}, format: alpaca, stage: 2}
              stages: [{max_steps: 3}, {max_steps: 3}]
            training: {method: lora, micro_batch_size: 4, learning_rate: 0.01, lr_scheduler: constant, seed: 7}
            lora: {rank: 4, alpha: 8}
            checkpoint: {output_dir: {{Path.Combine(dir, "unused")}}}
            """);
        File.WriteAllText(Path.Combine(dir, "single.yaml"), $$"""
            model: {path: {{modelDir}}}
            data: {path: {{data}}, template: alpaca}
            training: {method: lora, seed: 7}
            """);
        return dir;
    });

    // The GEM paper's and RWalk's definitions, written here from the matrix (row 0 = start).
    private static double[] Numbers(double[][] R)
    {
        int T = R[0].Length;
        double acc = R[T].Average();
        double bwt = Enumerable.Range(0, T - 1).Average(j => R[T][j] - R[j + 1][j]);
        double fwt = Enumerable.Range(1, T - 1).Average(j => R[j][j] - R[0][j]);
        double forgetting = Enumerable.Range(0, T - 1).Average(j => Enumerable.Range(1, T - 1).Max(l => R[l][j]) - R[T][j]);
        return [acc, bwt, fwt, forgetting];
    }

    private static (double Mean, double Std) MeanStd(double[] x)
    {
        double m = x.Average();
        return (m, Math.Sqrt(x.Sum(v => (v - m) * (v - m)) / (x.Length - 1)));
    }

    [Fact]
    public void TwoStrategiesTwoSeedsAggregateTheRunsForgettingMatricesAndSkipFinishedRuns()
    {
        var dir = Dir.Value;
        var outDir = Path.Combine(dir, "bench");
        var progress = new List<string>();
        var strategies = ContinualStrategies.Parse("sequential,replay");
        var report = ContinualBenchmark.Run(Path.Combine(dir, "staged.yaml"), [], strategies, 2, outDir, progress.Add);
        Assert.True(report.Complete);
        Assert.Equal([7, 8], report.Seeds);
        Assert.Equal(4, report.Runs.Count);
        Assert.Equal(4, progress.Count(l => l.Contains(": training (")));

        var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, ContinualBenchmark.JsonFile))).RootElement;
        foreach (var s in json.GetProperty("strategies").EnumerateArray())
        {
            string name = s.GetProperty("strategy").GetString()!;
            var per = new List<double[]>();
            foreach (int seed in new[] { 7, 8 })
            {
                var runDir = Path.Combine(outDir, name, $"seed{seed}");
                var f = JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, ForgettingReport.JsonFile))).RootElement;
                var R = f.GetProperty("matrices").GetProperty("token_accuracy").EnumerateArray()
                    .Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
                Assert.Equal(3, R.Length);
                per.Add(Numbers(R));
                // Each seed's matrix is in the report as the run wrote it.
                var inReport = json.GetProperty("runs").EnumerateArray().Single(r => r.GetProperty("strategy").GetString() == name && r.GetProperty("seed").GetInt32() == seed);
                Assert.Equal(R[2][0], inReport.GetProperty("matrices").GetProperty("token_accuracy")[2][0].GetDouble());
            }
            Assert.NotEqual(per[0], per[1]);   // the seeds differ
            var m = s.GetProperty("metrics").GetProperty("token_accuracy");
            string[] keys = ["average_accuracy", "backward_transfer", "forward_transfer", "forgetting"];
            for (int k = 0; k < 4; k++)
            {
                var (mean, std) = MeanStd([per[0][k], per[1][k]]);
                Assert.Equal(mean, m.GetProperty(keys[k]).GetProperty("mean").GetDouble(), 12);
                Assert.Equal(std, m.GetProperty(keys[k]).GetProperty("std").GetDouble(), 12);
            }
        }
        var html = File.ReadAllText(Path.Combine(outDir, ContinualBenchmark.HtmlFile));
        Assert.Contains("<svg", html);
        Assert.Contains("replay: token accuracy", html);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org", ""));

        // itune eval compare: one run's forgetting.json (a folder holding it) against the benchmark's strategies.
        var cmp = Path.Combine(dir, "cmp");
        var (rc, stdout, _) = TestConsole.Run("eval", "compare", Path.Combine(outDir, "sequential", "seed7"), outDir, "--out", cmp);
        Assert.Equal(0, rc);
        Assert.Contains("replay", stdout);
        var c = JsonDocument.Parse(File.ReadAllText(Path.Combine(cmp, "compare.json"))).RootElement.GetProperty("metrics").GetProperty("token_accuracy");
        var seven = c.GetProperty("seed7 (sequential)");
        var seq7 = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "sequential", "seed7", ForgettingReport.JsonFile))).RootElement
            .GetProperty("matrices").GetProperty("token_accuracy").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
        Assert.Equal(Numbers(seq7)[1], seven.GetProperty("backward_transfer").GetDouble(), 12);
        var replayMean = json.GetProperty("strategies")[1].GetProperty("metrics").GetProperty("token_accuracy").GetProperty("average_accuracy").GetProperty("mean").GetDouble();
        Assert.Equal(replayMean, c.GetProperty("replay").GetProperty("average_accuracy").GetDouble(), 12);
        Assert.Equal(replayMean - Numbers(seq7)[0], c.GetProperty("replay").GetProperty("average_accuracy_diff").GetDouble(), 12);
        Assert.True(File.Exists(Path.Combine(cmp, "report.html")) && File.Exists(Path.Combine(cmp, "compare.md")));
        var (rcMixed, _, errMixed) = TestConsole.Run("eval", "compare", outDir, dir, "--out", Path.Combine(dir, "cmp2"));
        Assert.Equal(2, rcMixed);
        Assert.Contains("not a forgetting.json", errMixed);

        // Run again: every run is skipped and the report is the same.
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(outDir, "sequential", "seed7", ForgettingReport.JsonFile));
        progress.Clear();
        var again = ContinualBenchmark.Run(Path.Combine(dir, "staged.yaml"), [], strategies, 2, outDir, progress.Add);
        Assert.Equal(4, progress.Count(l => l.Contains("finished earlier, skipped")));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(outDir, "sequential", "seed7", ForgettingReport.JsonFile)));
        Assert.Equal(JsonSerializer.Serialize(report.Strategies, ContinualBenchmark.Json), JsonSerializer.Serialize(again.Strategies, ContinualBenchmark.Json));
        // …but not with another config: a finished run of a different recipe is refused naming --out.
        var e = Assert.Throws<InstructTune.Common.InputException>(() =>
            ContinualBenchmark.Run(Path.Combine(dir, "staged.yaml"), ["training.learning_rate=0.02"], strategies, 2, outDir));
        Assert.Contains("--out", e.Message);
    }

    /// <summary>
    /// A benchmark stopped inside stage 2 of its first run (step 4; stage 1's end checkpoint is step 3) is not marked
    /// finished; the next invocation resumes that run from its checkpoint and ends with the same forgetting matrix as an
    /// uninterrupted run.
    /// </summary>
    [Fact]
    public void AnInterruptedRunResumesFromItsCheckpointToTheSameMatrix()
    {
        var dir = Dir.Value;
        var config = Path.Combine(dir, "staged.yaml");
        var strategies = ContinualStrategies.Parse("sequential");
        var reference = ContinualBenchmark.Run(config, ["training.seed=11"], strategies, 1, Path.Combine(dir, "ref"));
        var outDir = Path.Combine(dir, "stopped");
        using (var cts = new CancellationTokenSource())
            Assert.Throws<OperationCanceledException>(() => ContinualBenchmark.Run(config, ["training.seed=11"], strategies, 1, outDir,
                cancel: cts.Token, onStep: r => { if (r.Step == 4) cts.Cancel(); }));
        var runDir = Path.Combine(outDir, "sequential", "seed11");
        Assert.False(File.Exists(Path.Combine(runDir, ContinualBenchmark.RunFile)));
        Assert.False(JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, ContinualBenchmark.JsonFile))).RootElement.GetProperty("complete").GetBoolean());
        var progress = new List<string>();
        var resumed = ContinualBenchmark.Run(config, ["training.seed=11"], strategies, 1, outDir, progress.Add);
        Assert.Contains(progress, l => l.Contains("resuming from checkpoint-000004"));
        Assert.Equal(6, resumed.Runs[0].Steps);
        Assert.Equal(reference.Runs[0].Matrices["token_accuracy"], resumed.Runs[0].Matrices["token_accuracy"]);
        Assert.Equal(reference.Runs[0].Matrices["loss"], resumed.Runs[0].Matrices["loss"]);
    }

    [Fact]
    public void TheReplayStrategySetsReplayOnEveryLaterStageAndClearsTheOthersKeys()
    {
        var dir = Dir.Value;
        var replay = ContinualBenchmark.Bind(Path.Combine(dir, "staged.yaml"), ["loss.ewc_lambda=5"], ContinualStrategies.Parse("replay")[0], 1, Path.Combine(dir, "x"));
        Assert.Equal([0.0, ContinualStrategies.ReplayShare], replay.Data.Stages.Select(s => s.Replay));
        Assert.Equal([3, 3], replay.Data.Stages.Select(s => s.MaxSteps));
        Assert.Equal(0.0, replay.Loss.EwcLambda);
        Assert.Equal(8, replay.Training.Seed);
        Assert.Equal(Path.Combine(dir, "x", "replay", "seed8"), replay.Checkpoint.OutputDir);
        var ewc = ContinualBenchmark.Bind(Path.Combine(dir, "staged.yaml"), [], ContinualStrategies.Parse("ewc")[0], 0, Path.Combine(dir, "x"));
        Assert.Equal(ContinualStrategies.EwcLambda, ewc.Loss.EwcLambda);
        Assert.All(ewc.Data.Stages, s => Assert.Equal(0.0, s.Replay));
        // A λ or replay share given as an override is used by its own strategy (and cleared for the others).
        var ewc5 = ContinualBenchmark.Bind(Path.Combine(dir, "staged.yaml"), ["loss.ewc_lambda=5", "continual.ewc_gamma=0.5"], ContinualStrategies.Parse("ewc")[0], 0, Path.Combine(dir, "x"));
        Assert.Equal(5.0, ewc5.Loss.EwcLambda);
        Assert.Equal(1.0, ewc5.Continual.EwcGamma);
        var online = ContinualBenchmark.Bind(Path.Combine(dir, "staged.yaml"), ["loss.ewc_lambda=5", "continual.ewc_gamma=0.5"], ContinualStrategies.Parse("online-ewc")[0], 0, Path.Combine(dir, "x"));
        Assert.Equal((5.0, 0.5), (online.Loss.EwcLambda, online.Continual.EwcGamma));
        var replay2 = ContinualBenchmark.Bind(Path.Combine(dir, "staged.yaml"), ["data.stages=[{max_steps: 3}, {max_steps: 3, replay: 0.5}]"], ContinualStrategies.Parse("replay")[0], 0, Path.Combine(dir, "x"));
        Assert.Equal([0.0, 0.5], replay2.Data.Stages.Select(s => s.Replay));
    }

    [Theory]
    [InlineData("--strategies", "sequential,bogus", "2", "staged.yaml", "--strategies")]
    [InlineData("--strategies", "sequential,sequential", "2", "staged.yaml", "--strategies")]
    [InlineData("--strategies", "sequential", "0", "staged.yaml", "--seeds")]
    [InlineData("--strategies", "sequential", "1", "single.yaml", "data.stages")]
    public void BadInputIsRefusedWithExitCodeTwoNamingTheOption(string opt, string value, string seeds, string config, string named)
    {
        var dir = Dir.Value;
        var (rc, _, err) = TestConsole.Run("continual", "--config", Path.Combine(dir, config), opt, value, "--seeds", seeds, "--out", Path.Combine(dir, "bad-" + Guid.NewGuid().ToString("N")));
        Assert.Equal(2, rc);
        Assert.Contains(named, err);
        Assert.DoesNotContain("   at ", err);
    }
}
