using System.Text.Json;
using InstructTune.Data.Preference;
using InstructTune.Data.Records;
using InstructTune.Data.TaskSuite;
using InstructTune.Data.Templating;
using InstructTune.Models;
using InstructTune.Peft.Lora;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;
using InstructTune.Training.Preference;

namespace InstructTune.Recipes.Quickstart;

/// <summary>What the DPO stage measured (out/preference_results.json).</summary>
public sealed record QuickstartPreferenceResult(int TrainPairs, int HeldOutPairs, double SftPreferenceAccuracy, double DpoPreferenceAccuracy,
    double DpoRewardAccuracy, double SftExactMatch, double DpoExactMatch, int Steps, double Seconds);

/// <summary>
/// The quickstart's optional feedback stage (option <c>Preference: "dpo"</c>): after instruction tuning, the SFT adapter
/// is merged (out/sft, HF layout), pairs are built from the suite — the correct answer chosen, a plausible wrong one
/// rejected (the answer another input of the same task has) — and a fresh LoRA adapter is DPO-tuned on them with the
/// merged SFT model as its reference (adapter disabled). Measured on held-out pairs and held-out examples:
/// preference accuracy = the share of pairs whose chosen completion the model gives the higher log-prob (the SFT
/// model's and the DPO model's, comparable), TRL's rewards/accuracies of the DPO model, and greedy exact match.
/// </summary>
public static class QuickstartPreference
{
    public static QuickstartPreferenceResult Run(QuickstartOptions o, LlamaModel sftModel, ITokenizer tokenizer, IPromptTemplate template,
        IReadOnlyList<SuiteExample> train, IReadOnlyList<SuiteExample> heldOut, string tokenizerDir, string outDir, IQuickstartProgress progress)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        LoraInjector.MergeAndUnload(sftModel);               // the SFT model as plain weights: the DPO policy's start and reference
        var sftDir = Path.Combine(outDir, "sft");
        LlamaCheckpoint.Save(sftModel, sftDir);
        foreach (var f in Directory.GetFiles(tokenizerDir)) File.Copy(f, Path.Combine(sftDir, Path.GetFileName(f)), overwrite: true);

        int padId = tokenizer.PadId ?? tokenizer.EosId ?? 0;
        var tokenize = new ExampleTokenizer(tokenizer, template, new MaskOptions(o.TuneSeqLen));
        var trainPairs = Pairs(train, tokenize, padId, o.Seed);
        var heldPairs = Pairs(heldOut, tokenize, padId, o.Seed + 1);
        double sftAccuracy = LogProbAccuracy(sftModel, heldPairs, o.TuneBatch);
        progress.Say($"DPO: {trainPairs.Count} train pairs, {heldPairs.Count} held-out pairs; SFT model prefers the chosen answer on {sftAccuracy:F3} of held-out pairs");

        var c = new TrainConfig();
        c.Training.Objective = TrainingObjective.Dpo;
        c.Training.Method = TuningMethod.Lora;
        c.Training.MaxSteps = o.DpoSteps;
        c.Training.MicroBatchSize = o.TuneBatch;
        c.Training.LearningRate = o.DpoLearningRate;
        c.Training.WarmupSteps = Math.Min(10, o.DpoSteps / 10);
        c.Training.Seed = o.Seed;
        c.Preference.Beta = o.DpoBeta;
        c.Lora.Rank = o.LoraRank; c.Lora.Alpha = o.LoraAlpha;
        c.Data.MaxSeqLen = o.TuneSeqLen;
        c.Eval.EverySteps = o.DpoSteps;
        c.Checkpoint.OutputDir = Path.Combine(outDir, "runs", "dpo");
        c.Checkpoint.SaveEverySteps = 0; c.Checkpoint.KeepLast = 1;
        c.Logging.TensorBoard = false;
        var policy = LlamaCheckpoint.Load(sftDir);
        var inputs = new TrainingInputs(policy, [], [], padId, ["feedback"], sftDir) { Preference = trainPairs, PreferenceValidation = heldPairs };
        var recipe = FineTuneRecipe.FromInputs(c, inputs);
        double rewardAccuracy = double.NaN;
        var summary = recipe.Train(r => progress.Step("dpo", r.Step, o.DpoSteps, r.Loss), quiet: true);
        var last = File.ReadLines(Path.Combine(c.Checkpoint.OutputDir, "metrics.jsonl")).Last();
        if (JsonDocument.Parse(last).RootElement.TryGetProperty("eval_rewards/accuracies", out var ra)) rewardAccuracy = ra.GetDouble();
        double dpoAccuracy = LogProbAccuracy(policy, heldPairs, o.TuneBatch);
        var adapterDir = Path.Combine(outDir, "dpo_adapter");
        Directory.CreateDirectory(adapterDir);
        foreach (var f in Directory.GetFiles(summary.ExportDir)) File.Copy(f, Path.Combine(adapterDir, Path.GetFileName(f)), overwrite: true);

        var split = new Dictionary<string, List<SuiteExample>> { [SuiteSplit.HeldOutExamples] = heldOut.ToList() };
        double emSft = QuickstartEvaluation.Run(sftDir, null, tokenizer, template, split, o.MaxNewTokens).ExactMatch[SuiteSplit.HeldOutExamples];
        double emDpo = QuickstartEvaluation.Run(sftDir, adapterDir, tokenizer, template, split, o.MaxNewTokens).ExactMatch[SuiteSplit.HeldOutExamples];
        progress.Say($"DPO ({o.DpoSteps} steps, β={o.DpoBeta}): held-out preference accuracy {sftAccuracy:F3} → {dpoAccuracy:F3} " +
            $"(rewards/accuracies {rewardAccuracy:F3}); held-out exact match {emSft:F3} → {emDpo:F3}");
        var result = new QuickstartPreferenceResult(trainPairs.Count, heldPairs.Count, sftAccuracy, dpoAccuracy, rewardAccuracy, emSft, emDpo,
            summary.Steps, Math.Round(clock.Elapsed.TotalSeconds, 2));
        Checkpoints.AtomicFile.WriteAllText(Path.Combine(outDir, "preference_results.json"),
            JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
        return result;
    }

    /// <summary>
    /// One pair per example: chosen " " + its answer, rejected " " + the answer of another example of the same task
    /// (seeded pick among the different answers) — wrong but of the right kind, the hardest mistake to tell apart.
    /// </summary>
    public static PreferenceData Pairs(IReadOnlyList<SuiteExample> examples, ExampleTokenizer tokenize, int padId, int seed)
    {
        var rng = new Engine.Tensors.Rng((ulong)seed * 31 + 7);
        var byTask = examples.GroupBy(e => e.Record.Task).ToDictionary(g => g.Key, g => g.Select(e => e.Record.Output).Distinct().ToList());
        var pairs = new List<(TokenizedExample, TokenizedExample)>();
        foreach (var e in examples)
        {
            var others = byTask[e.Record.Task].Where(a => a != e.Record.Output).ToList();
            if (others.Count == 0) continue;
            var wrong = others[(int)(rng.NextDouble() * others.Count)];
            var chosen = tokenize.Tokenize(QuickstartData.WithLeadingSpace(e.Record), 0);
            var rejected = tokenize.Tokenize(QuickstartData.WithLeadingSpace(e.Record with { Output = wrong }), 0);
            pairs.Add((chosen, rejected));
        }
        return PreferenceData.Pairs(pairs, padId);
    }

    /// <summary>The share of pairs whose chosen completion gets the higher summed log-prob under <paramref name="model"/>.</summary>
    public static double LogProbAccuracy(LlamaModel model, PreferenceData pairs, int itemsPerBatch)
    {
        int right = 0;
        for (int s = 0; s < pairs.Count; s += itemsPerBatch)
        {
            var items = Enumerable.Range(s, Math.Min(itemsPerBatch, pairs.Count - s)).ToArray();
            var rows = PreferenceObjective.Score(model, pairs.Collate(items));
            for (int k = 0; k < items.Length; k++) if (rows.Sums[k] > rows.Sums[items.Length + k]) right++;
        }
        return pairs.Count == 0 ? double.NaN : (double)right / pairs.Count;
    }
}
