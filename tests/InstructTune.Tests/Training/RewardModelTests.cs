using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Common;
using InstructTune.Data.Preference;
using InstructTune.Models;
using InstructTune.Recipes;
using InstructTune.Tests.Evaluation;
using InstructTune.Training.Config;
using InstructTune.Training.Preference;

namespace InstructTune.Tests.Training;

/// <summary>
/// The reward model (training.objective: reward) against PyTorch (tools/golden/reward_model.py: HF's `score` head at
/// the last non-padding token, TRL RewardTrainer's Bradley–Terry loss): loss, metrics and every gradient, one batch and
/// two accumulated micro-batches; then through the recipe (LoRA + head, saved, `itune score --reward`).
/// </summary>
[Collection("Console")]
public class RewardModelTests
{
    private const double Tol = 1e-5;
    private static readonly JsonElement Root =
        JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("preference", "reward.json"))).RootElement;

    private static JsonElement Case(string name) => Root.GetProperty("cases").EnumerateArray().First(c => c.GetProperty("name").GetString() == name);

    private static void AssertClose(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= Tol * Math.Max(1, Math.Abs(expected)), $"{what}: {actual:R} vs PyTorch {expected:R}");

    [Theory]
    [InlineData("reward_lora", false)]
    [InlineData("reward_lora", true)]
    [InlineData("reward_lora_centered", true)]
    [InlineData("reward_full", true)]
    [InlineData("reward_lora_margin", false)]   // TRL's per-pair margin column: −log σ(r_c − r_r − margin)
    [InlineData("reward_lora_margin", true)]
    public void LossMetricsAndGradientsMatchPyTorch(string name, bool accumulate)
    {
        var c = Case(name);
        bool full = c.GetProperty("full").GetBoolean();
        var model = full ? PreferenceGoldenTests.TinyModel() : PreferenceGoldenTests.TinyLoraModel();
        var head = new RewardHead(new Engine.Tensors.Parameter(c.GetProperty("head").EnumerateArray().Select(v => v.GetSingle()).ToArray(), 1, model.Config.HiddenSize));
        var data = PreferenceGoldenTests.Pairs();
        if (c.TryGetProperty("margins", out var margins))
            data = PreferenceData.Pairs(Enumerable.Range(0, data.Count).Select(k => (data.Sequences[2 * k], data.Sequences[2 * k + 1])).ToList(),
                data.PadId, margins.EnumerateArray().Select(v => v.GetDouble()).ToList());
        var objective = new RewardObjective(head, c.GetProperty("center_rewards_coefficient").GetDouble(), data);
        int[] all = Enumerable.Range(0, data.Count).ToArray();
        var micro = accumulate ? [data.Collate(all[..1]), data.Collate(all[1..])] : new[] { data.Collate(all) };

        // The rewards themselves (chosen rows then rejected rows, as the script lists them).
        var rewards = RewardObjective.Score(model, head, data.Collate(all));
        var expectedRewards = c.GetProperty("rewards").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        for (int i = 0; i < rewards.Length; i++) AssertClose(expectedRewards[i], rewards[i], $"{name} reward of row {i}");

        var outcome = objective.ForwardBackward(model, micro, checkpointLayers: false);
        var metrics = new Dictionary<string, double>(outcome.Metrics) { ["loss"] = outcome.Loss };
        foreach (var m in c.GetProperty("metrics").EnumerateObject())
            AssertClose(m.Value.GetDouble(), metrics[m.Name], $"{name} {m.Name}");
        var named = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        named[RewardHead.TensorName] = head.Weight;
        int checkedTensors = 0;
        foreach (var g in c.GetProperty("grads").EnumerateObject())
        {
            var expected = g.Value.EnumerateArray().Select(v => v.GetDouble()).ToArray();
            double scale = Math.Max(1e-3, expected.Max(Math.Abs));
            if (!named.TryGetValue(g.Name, out var p) || p.Grad == null)
            {
                // Only a parameter the reward does not use (the LM head) may have no gradient, and PyTorch's is zero.
                Assert.True(expected.All(v => v == 0), $"{name}: no gradient for {g.Name}, PyTorch has one");
                continue;
            }
            var actual = p.Grad.Span;
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= Tol * scale, $"{name} grad {g.Name}[{i}]: {actual[i]:R} vs PyTorch {expected[i]:R}");
            checkedTensors++;
        }
        Assert.True(checkedTensors >= (full ? 10 : 7), $"{name}: only {checkedTensors} gradients compared");
    }

    /// <summary>Pairs whose chosen answer is the right sum and rejected a near miss (the tiny model learns it quickly).</summary>
    private static List<string> SumPairs(int n) => Enumerable.Range(0, n).Select(i =>
    {
        int a = i % 7, b = i / 7 % 5;
        return JsonSerializer.Serialize(new { prompt = $"What is {a}+{b}?", chosen = $"{a + b} good", rejected = $"{a + b + 1 + i % 2} bad" });
    }).ToList();

    [Fact]
    public void LoraRewardModelTrainsSavesAndScoresFromTheCommandLine()
    {
        var lines = SumPairs(40);
        var modelDir = InstructTune.Tests.Recipes.PreferenceRecipeTests.Workspace(lines, out var data);
        var run = Path.Combine(Path.GetDirectoryName(data)!, "run");
        var config = ConfigLoader.LoadFromString<TrainConfig>("",
            [$"model.path={modelDir}", $"data.path={data}", $"checkpoint.output_dir={run}", "logging.tensor_board=false", "data.template=chatml",
             "data.max_seq_len=64", "training.micro_batch_size=8", "training.objective=reward", "training.method=lora", "lora.rank=4",
             "training.max_steps=25", "training.learning_rate=0.01", "training.warmup_steps=0", "data.validation_fraction=0.2", "eval.every_steps=25"]);
        var summary = FineTuneRecipe.Setup(config).Train(quiet: true);
        Assert.True(File.Exists(Path.Combine(summary.ExportDir, RewardHead.FileName)), "reward_head.safetensors beside the adapter");
        var last = JsonDocument.Parse(File.ReadLines(Path.Combine(run, "metrics.jsonl")).Last()).RootElement;
        Assert.True(last.TryGetProperty("eval_accuracy", out var acc), "held-out pairwise accuracy logged as eval_accuracy");

        // Saved → loaded → `itune score --reward`: the same rewards as the library, and the learned preference.
        var (model, head, tokenizer) = RewardScoring.Load(modelDir, summary.ExportDir);
        var pairs = RewardScoring.ScorePairs(model, head, tokenizer, data, "chatml", modelDir, 64, 8, out _);
        Assert.Equal(40, pairs.Count);
        Assert.True(pairs.Count(p => p.Chosen > p.Rejected) >= 36, $"the reward model prefers the chosen answer on {pairs.Count(p => p.Chosen > p.Rejected)}/40 pairs");
        var (rc, stdout, stderr) = CliCapture.Run("score", "--reward", "--model", modelDir, "--adapter", summary.ExportDir, "--input", data,
            "--template", "chatml", "--max-seq-len", "64");
        Assert.True(rc == 0, stderr);
        var printed = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(40, printed.Count);
        for (int i = 0; i < 40; i++)
        {
            Assert.Equal(pairs[i].Chosen, printed[i].GetProperty("chosen").GetDouble(), 6);
            Assert.Equal(pairs[i].Rejected, printed[i].GetProperty("rejected").GetDouble(), 6);
        }
        Assert.Contains("pairwise accuracy", stderr);

        // A folder without a head is refused with its path, exit 2.
        var (rc2, _, err2) = CliCapture.Run("score", "--reward", "--model", modelDir, "--input", data);
        Assert.Equal(2, rc2);
        Assert.Contains(RewardHead.FileName, err2);
    }

    [Fact]
    public void SettingsOfOtherObjectivesAreRefused()
    {
        TrainConfig With(params string[] kv) => ConfigLoader.LoadFromString<TrainConfig>("", kv);
        Assert.Contains("preference.beta", Assert.Throws<ConfigException>(() => PreferenceSetup.Validate(With("training.objective=reward", "preference.beta=0.5"))).Message);
        Assert.Contains("precompute_ref_log_probs", Assert.Throws<ConfigException>(() => PreferenceSetup.Validate(With("training.objective=reward", "preference.precompute_ref_log_probs=true"))).Message);
        Assert.Contains("center_rewards_coefficient", Assert.Throws<ConfigException>(() => PreferenceSetup.Validate(With("training.objective=dpo", "preference.center_rewards_coefficient=0.01"))).Message);
        PreferenceSetup.Validate(With("training.objective=reward", "preference.center_rewards_coefficient=0.01"));
    }
}
