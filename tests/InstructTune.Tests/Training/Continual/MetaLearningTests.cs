using System.Text.Json;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Recipes;
using InstructTune.Training.Checkpointing;
using InstructTune.Training.Config;
using InstructTune.Training.Continual;
using Xunit.Abstractions;

namespace InstructTune.Tests.Training.Continual;

/// <summary>
/// Reptile / first-order MAML (meta.*) on a toy family of tasks: "Complete the word." answered by the input word and a
/// task-specific syllable (8 meta-training syllables, a 9th held out). The meta-learned initialisation must reach the
/// target loss on the held-out task in fewer SGD steps than the plain start; the meta-gradient must follow its formula
/// (k = 1 Reptile = the plain batch gradient; FO-MAML at a vanishing inner rate = the query gradient at θ₀); a run
/// cancelled mid-way resumes bit for bit; bad keys are refused by name.
/// </summary>
public class MetaLearningTests(ITestOutputHelper output)
{
    private static readonly string[] Syllables = ["ba", "ko", "mi", "su", "te", "ra", "no", "pe", "du"];

    private static readonly Lazy<(string Dir, string ModelDir, string Data)> Workspace = new(() =>
    {
        var dir = Directory.CreateTempSubdirectory("meta").FullName;
        var rng = new Random(7);
        var lines = new List<string>();
        for (int i = 0; i < 9 * 40; i++)
        {
            string syl = Syllables[i % 9], w = new(Enumerable.Range(0, 3).Select(_ => (char)('a' + rng.Next(26))).ToArray());
            lines.Add(JsonSerializer.Serialize(new { instruction = "Complete the word.", input = w, output = $"{w} {syl}", task = $"suffix_{syl}" }));
        }
        var (modelDir, data) = TinyTrainingWorkspace.Create(dir, lines, maxPositions: 256);
        return (dir, modelDir, data);
    });

    private static TrainConfig Config(string runName, string meta, int steps = 60)
    {
        var (dir, modelDir, data) = Workspace.Value;
        return ConfigLoader.LoadFromString<TrainConfig>($$"""
            model: {path: {{modelDir}}}
            data: {path: {{data}}, format: alpaca, template: alpaca, max_seq_len: 256, validation_fraction: 0.25, dedup: off}
            training: {method: full, micro_batch_size: 4, learning_rate: 0.003, lr_scheduler: constant, seed: 11, max_steps: {{steps}}, max_grad_norm: 1.0}
            meta: {{meta}}
            checkpoint: {output_dir: {{Path.Combine(dir, "runs", runName)}}, keep_last: 10}
            logging: {tensor_board: false}
            """);
    }

    private static JsonElement MetaJson(string runDir) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, FastAdaptation.JsonFile))).RootElement.GetProperty("tasks")[0];

    private void Show(string name, JsonElement t)
    {
        string Curve(string start) => string.Join(" ", t.GetProperty(start).GetProperty("loss").EnumerateArray().Select(v => v.GetDouble().ToString("F2")));
        output.WriteLine($"{name}: target {t.GetProperty("target_loss").GetDouble():F3} meta {t.GetProperty("meta").GetProperty("steps_to_target")} plain {t.GetProperty("plain").GetProperty("steps_to_target")}");
        output.WriteLine($"  meta  {Curve("meta")}");
        output.WriteLine($"  plain {Curve("plain")}");
    }

    private const string Adapt = "adapt_tasks: [suffix_du], adapt_steps: 20, inner_learning_rate: 0.05";

    /// <summary>Reptile (k = 5), the same with k = 1 (= plain multi-task SGD on the same batches), FO-MAML (k = 5): 60 steps each.</summary>
    private static readonly Lazy<(TrainingSummary Reptile, TrainingSummary Joint, TrainingSummary Fomaml)> Runs = new(() => (
        FineTuneRecipe.Setup(Config("reptile", $"{{algorithm: reptile, inner_steps: 5, {Adapt}}}")).Train(quiet: true),
        FineTuneRecipe.Setup(Config("joint", $"{{algorithm: reptile, inner_steps: 1, {Adapt}}}")).Train(quiet: true),
        FineTuneRecipe.Setup(Config("fomaml", $"{{algorithm: fomaml, inner_steps: 5, {Adapt}}}")).Train(quiet: true)));

    private static int Steps(JsonElement task, string start) => task.GetProperty(start).GetProperty("steps_to_target") is { ValueKind: JsonValueKind.Number } n
        ? n.GetInt32() : int.MaxValue;

    [Fact]
    public void MetaLearnedStartReachesTheTargetInFewerStepsThanThePlainStart()
    {
        var (reptile, joint, fomaml) = Runs.Value;
        var r = MetaJson(reptile.RunDir); var j = MetaJson(joint.RunDir); var f = MetaJson(fomaml.RunDir);
        Show("reptile", r); Show("joint (k = 1)", j); Show("fomaml", f);
        Assert.Equal("suffix_du", r.GetProperty("task").GetString());
        // The target is where the plain start is after K = 20 steps; the three runs share the plain start (same seed, same model).
        Assert.Equal(r.GetProperty("target_loss").GetDouble(), j.GetProperty("target_loss").GetDouble(), 12);
        Assert.Equal(20, r.GetProperty("plain").GetProperty("loss").GetArrayLength() - 1);
        int plain = Steps(r, "plain");
        Assert.True(Steps(r, "meta") < plain, $"Reptile's start needs {Steps(r, "meta")} steps, the plain start {plain}");
        Assert.True(Steps(f, "meta") < plain, $"FO-MAML's start needs {Steps(f, "meta")} steps, the plain start {plain}");
        // …and Reptile's start adapts faster than multi-task training on the same batches for as many steps (k = 1).
        Assert.True(Steps(r, "meta") < Steps(j, "meta"), $"Reptile {Steps(r, "meta")} steps vs multi-task {Steps(j, "meta")}");
        Assert.Equal((double)Steps(r, "meta") / plain, r.GetProperty("step_ratio").GetDouble(), 12);
        Assert.Contains("<svg", File.ReadAllText(Path.Combine(reptile.RunDir, FastAdaptation.HtmlFile)));
        // The exported model is the meta-learned initialisation (the comparison restored it).
        Assert.True(File.Exists(Path.Combine(reptile.RunDir, "final", "model.safetensors")));
    }

    [Fact]
    public void ARunCancelledMidwayResumesBitForBit()
    {
        var full = Runs.Value.Reptile;
        var config = Config("reptile-resume", $"{{algorithm: reptile, inner_steps: 5, {Adapt}}}");
        config.Checkpoint.SaveEverySteps = 20;
        using (var cts = new CancellationTokenSource())
            FineTuneRecipe.Setup(config).Train(r => { if (r.Step == 33) cts.Cancel(); }, quiet: true, cancel: cts.Token);
        var resumed = FineTuneRecipe.Setup(config, resume: "latest").Train(quiet: true);
        Assert.Equal(60, resumed.Steps);
        byte[] Weights(string runDir) => File.ReadAllBytes(Path.Combine(new CheckpointStore(runDir).Latest()!, TrainerCheckpoint.WeightsFile));
        Assert.Equal(Weights(full.RunDir), Weights(resumed.RunDir));
        Assert.Equal(File.ReadAllText(Path.Combine(full.RunDir, FastAdaptation.JsonFile)), File.ReadAllText(Path.Combine(resumed.RunDir, FastAdaptation.JsonFile)));
    }

    /// <summary>
    /// The meta-gradient against its definition, computed here with separate gradient calls: Reptile with k = 2 on one
    /// example = the mean of ∇L(θ₀) and ∇L(θ₀ − α∇L(θ₀)); FO-MAML with k = 2 = ∇L(θ₂) at θ₂ = θ₁ − α∇L(θ₁); the weights are
    /// left exactly at θ₀.
    /// </summary>
    [Fact]
    public void TheMetaGradientFollowsItsDefinition()
    {
        var recipe = FineTuneRecipe.Setup(Config("formula", "{algorithm: reptile}", steps: 1));
        recipe.Dispose();
        var model = recipe.Model;
        var ps = recipe.Trainer.Trainable.Select(t => t.Parameter).ToList();
        var example = recipe.Data!.Stages[0].First(e => e.LearnedTokens > 0);
        var inner = new InnerLoop(model, ps, 2, 256, 0, new InstructTune.Training.Losses.ObjectiveOptions(), 9, false);
        const float alpha = 0.05f;
        var theta0 = MetaLearner.Snapshot(ps);
        var batch = inner.Draw([example], new Rng(1));   // every draw from one example is the same batch
        float[][] Grad() { inner.Gradient(batch); var g = ps.Select(p => p.Grad!.Span.ToArray()).ToArray(); foreach (var p in ps) p.ZeroGrad(); return g; }
        void Move(float[][] g) { for (int q = 0; q < ps.Count; q++) { var v = ps[q].Span; for (int e = 0; e < v.Length; e++) v[e] -= alpha * g[q][e]; } }
        var g0 = Grad(); Move(g0);
        var g1 = Grad(); Move(g1);
        var g2 = Grad();
        MetaLearner.Restore(ps, theta0);
        double scale = theta0.Max(t => t.Max(Math.Abs)) / alpha;   // Reptile divides a weight difference by α·k

        foreach (var (algorithm, expected, tol) in new[]
        {
            (MetaAlgorithm.Reptile, g0.Zip(g1, (a, b) => a.Zip(b, (x, y) => (x + y) / 2).ToArray()).ToArray(), 2e-6 * scale),
            (MetaAlgorithm.Fomaml, g2, 1e-6),
        })
        {
            var options = new MetaSection { Algorithm = algorithm, InnerSteps = 2, InnerLearningRate = alpha };
            var learner = new MetaLearner(ps, [[example]], options, inner, seed: 1, step: () => 0);
            learner.ForwardBackward(model, [], false);
            for (int q = 0; q < ps.Count; q++)
            {
                Assert.Equal(theta0[q], ps[q].Span.ToArray());                       // θ is back at θ₀, bit for bit
                var got = ps[q].Grad!.Span;
                for (int e = 0; e < got.Length; e++)
                    Assert.True(Math.Abs(got[e] - expected[q][e]) <= tol + 1e-4 * Math.Abs(expected[q][e]),
                        $"{algorithm}: {recipe.Trainer.Trainable[q].Name}[{e}] = {got[e]}, expected {expected[q][e]}");
                ps[q].ZeroGrad();
            }
        }
        Assert.True(g0.Zip(g1).Any(x => !x.First.SequenceEqual(x.Second)));   // the two inner gradients differ: the check sees the inner step
    }

    [Fact]
    public void BadMetaKeysAreRefusedNamingTheKey()
    {
        var unknown = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config("bad1", "{algorithm: reptile, adapt_tasks: [suffix_zz]}")));
        Assert.Contains("meta.adapt_tasks", unknown.Message);
        Assert.Contains("suffix_zz", unknown.Message);
        var off = Assert.Throws<ConfigException>(() => FineTuneRecipe.Validate(Config("bad2", "{adapt_tasks: [suffix_du]}")));
        Assert.Contains("meta.adapt_tasks", off.Message);
        // Holding out 8 of the 9 syllables leaves one task: no family to meta-learn over.
        var one = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config("bad3",
            "{algorithm: fomaml, adapt_tasks: [suffix_ba, suffix_ko, suffix_mi, suffix_su, suffix_te, suffix_ra, suffix_no, suffix_du]}")));
        Assert.Contains("meta.algorithm", one.Message);
        var held = Config("bad4", "{algorithm: reptile, adapt_tasks: [suffix_du]}");
        held.Data.ValidationFraction = 0;
        Assert.Contains("data.validation_fraction", Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(held)).Message);
    }
}
