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

/// <summary>What the DPO stage measured (out/preference_results.json). Accuracies are over the held-out pairs (all, and
/// per held-out split); <c>HeldOutSftMistakes</c> counts the held-out pairs whose rejected answer is the SFT model's own
/// greedy output.</summary>
public sealed record QuickstartPreferenceResult(string Rejected, int TrainPairs, int TrainSftMistakes, int HeldOutPairs, int HeldOutSftMistakes,
    double SftPreferenceAccuracy, double DpoPreferenceAccuracy, double DpoRewardAccuracy,
    IReadOnlyDictionary<string, double> SftPreferenceAccuracyBySplit, IReadOnlyDictionary<string, double> DpoPreferenceAccuracyBySplit,
    double SftExactMatch, double DpoExactMatch, IReadOnlyDictionary<string, double> SftExactMatchBySplit,
    IReadOnlyDictionary<string, double> DpoExactMatchBySplit, int Steps, double Seconds);

/// <summary>
/// The quickstart's optional feedback stage (option <c>Preference: "dpo"</c>): after instruction tuning, the SFT adapter
/// is merged (out/sft, HF layout), preference pairs are built (<see cref="QuickstartOptions.DpoRejected"/>) and a fresh
/// LoRA adapter is DPO-tuned on them with the merged SFT model as its reference (adapter disabled).
/// <para>
/// <c>own_mistakes</c> (default): the pairs are what a feedback loop collects. Prompts: for training, fresh inputs of
/// the quickstart's families in all four phrasings (the held-out fourth included, where the SFT model is weakest),
/// none of them an (instruction, input) of the suite; held out, the suite's held-out examples and held-out phrasings.
/// Chosen = the correct answer; rejected = the SFT model's own greedy answer when it is wrong, otherwise the wrong
/// answer the SFT model finds most likely among a few answers of other inputs of the same task (a hard negative).
/// <c>other_answer</c>: training prompts from the train split and held-out pairs from the held-out examples, rejected
/// = another input's answer of the same task (the SFT model already prefers the right answer on nearly all of these).
/// </para>
/// Measured on the held-out pairs and held-out examples: preference accuracy = the share of pairs whose chosen
/// completion the model gives the higher summed log-prob (the SFT model's and the DPO model's, comparable), TRL's
/// rewards/accuracies of the DPO model, and greedy exact match.
/// </summary>
public static class QuickstartPreference
{
    /// <summary>Wrong answers of other inputs scored per prompt when the SFT model's greedy answer is right.</summary>
    private const int HardNegativeCandidates = 6;

    public static QuickstartPreferenceResult Run(QuickstartOptions o, LlamaModel sftModel, ITokenizer tokenizer, IPromptTemplate template,
        IReadOnlyList<SuiteExample> suite, IReadOnlyList<SuiteExample> train, IReadOnlyDictionary<string, List<SuiteExample>> heldOut,
        string tokenizerDir, string outDir, IQuickstartProgress progress)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        LoraInjector.MergeAndUnload(sftModel);               // the SFT model as plain weights: the DPO policy's start and reference
        var sftDir = Path.Combine(outDir, "sft");
        LlamaCheckpoint.Save(sftModel, sftDir);
        foreach (var f in Directory.GetFiles(tokenizerDir)) File.Copy(f, Path.Combine(sftDir, Path.GetFileName(f)), overwrite: true);

        int padId = tokenizer.PadId ?? tokenizer.EosId ?? 0;
        var tokenize = new ExampleTokenizer(tokenizer, template, new MaskOptions(o.TuneSeqLen));
        var rejectedMode = o.DpoRejected;
        List<PairSource> trainSources, heldSources;
        if (rejectedMode == "other_answer")
        {
            trainSources = OtherAnswerPairs(train, o.Seed);
            heldSources = OtherAnswerPairs(heldOut[SuiteSplit.HeldOutExamples], o.Seed + 1);
        }
        else if (rejectedMode == "own_mistakes")
        {
            var fresh = FreshPrompts(suite, o.DpoTrainPerFamily, o.Seed + 17);
            var pools = new Dictionary<string, List<SuiteExample>>(heldOut) { ["dpo_train"] = fresh };
            var greedy = QuickstartEvaluation.Run(sftDir, null, tokenizer, template, pools, o.MaxNewTokens).Samples;
            var answers = suite.Concat(fresh).GroupBy(e => e.Record.Task).ToDictionary(g => g.Key, g => g.Select(e => e.Record.Output).Distinct().ToList());
            trainSources = OwnMistakePairs(sftModel, tokenize, padId, o, fresh, greedy.Where(s => s.Split == "dpo_train").ToList(), answers, o.Seed);
            heldSources = heldOut.SelectMany(kv => OwnMistakePairs(sftModel, tokenize, padId, o, kv.Value,
                greedy.Where(s => s.Split == kv.Key).ToList(), answers, o.Seed + 1)).ToList();
        }
        else throw new InvalidDataException($"quickstart option DpoRejected: '{o.DpoRejected}' is not own_mistakes or other_answer");

        var trainPairs = ToPairs(trainSources, tokenize, padId);
        var heldPairs = ToPairs(heldSources, tokenize, padId);
        var sftBySplit = AccuracyBySplit(sftModel, heldSources, heldPairs, o.TuneBatch, out double sftAccuracy);
        int trainMistakes = trainSources.Count(p => p.SftMistake), heldMistakes = heldSources.Count(p => p.SftMistake);
        progress.Say($"DPO ({rejectedMode}): {trainPairs.Count} train pairs ({trainMistakes} rejected = the SFT model's own mistake), "
            + $"{heldPairs.Count} held-out pairs ({heldMistakes} own mistakes); SFT model prefers the chosen answer on {sftAccuracy:F3} of held-out pairs "
            + $"({string.Join(", ", sftBySplit.Select(kv => $"{kv.Key} {kv.Value:F3}"))})");
        WritePairs(Path.Combine(outDir, "preference_pairs.jsonl"), trainSources.Select(p => ("train", p)).Concat(heldSources.Select(p => ("heldout", p))));

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
        var dpoBySplit = AccuracyBySplit(policy, heldSources, heldPairs, o.TuneBatch, out double dpoAccuracy);
        var adapterDir = Path.Combine(outDir, "dpo_adapter");
        Directory.CreateDirectory(adapterDir);
        foreach (var f in Directory.GetFiles(summary.ExportDir)) File.Copy(f, Path.Combine(adapterDir, Path.GetFileName(f)), overwrite: true);

        var emSft = QuickstartEvaluation.Run(sftDir, null, tokenizer, template, heldOut, o.MaxNewTokens).ExactMatch;
        var emDpo = QuickstartEvaluation.Run(sftDir, adapterDir, tokenizer, template, heldOut, o.MaxNewTokens).ExactMatch;
        progress.Say($"DPO ({o.DpoSteps} steps, β={o.DpoBeta}): held-out preference accuracy {sftAccuracy:F3} → {dpoAccuracy:F3} "
            + $"({string.Join(", ", dpoBySplit.Select(kv => $"{kv.Key} {sftBySplit[kv.Key]:F3} → {kv.Value:F3}"))}; rewards/accuracies {rewardAccuracy:F3}); "
            + $"exact match {string.Join(", ", emDpo.Select(kv => $"{kv.Key} {emSft[kv.Key]:F3} → {kv.Value:F3}"))}");
        var result = new QuickstartPreferenceResult(rejectedMode, trainPairs.Count, trainMistakes, heldPairs.Count, heldMistakes,
            sftAccuracy, dpoAccuracy, rewardAccuracy, sftBySplit, dpoBySplit,
            emSft[SuiteSplit.HeldOutExamples], emDpo[SuiteSplit.HeldOutExamples], emSft, emDpo, summary.Steps, Math.Round(clock.Elapsed.TotalSeconds, 2));
        Checkpoints.AtomicFile.WriteAllText(Path.Combine(outDir, "preference_results.json"),
            JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
        return result;
    }

    /// <summary>One pair before tokenization: the example (its correct answer is chosen), the rejected answer, and whether
    /// that answer is the SFT model's own greedy output.</summary>
    public sealed record PairSource(SuiteExample Example, string Rejected, bool SftMistake);

    /// <summary>Rejected = the answer of another input of the same task (seeded pick among the different answers).</summary>
    public static List<PairSource> OtherAnswerPairs(IReadOnlyList<SuiteExample> examples, int seed)
    {
        var rng = new Engine.Tensors.Rng((ulong)seed * 31 + 7);
        var byTask = examples.GroupBy(e => e.Record.Task).ToDictionary(g => g.Key, g => g.Select(e => e.Record.Output).Distinct().ToList());
        var pairs = new List<PairSource>();
        foreach (var e in examples)
        {
            var others = byTask[e.Record.Task].Where(a => a != e.Record.Output).ToList();
            if (others.Count == 0) continue;
            pairs.Add(new PairSource(e, others[(int)(rng.NextDouble() * others.Count)], false));
        }
        return pairs;
    }

    /// <summary>
    /// Rejected = <paramref name="greedy"/>'s answer where it is wrong; otherwise the candidate (up to
    /// <see cref="HardNegativeCandidates"/> seeded picks among other inputs' answers of the task) with the highest summed
    /// log-prob under <paramref name="sft"/>. <paramref name="greedy"/> lines up with <paramref name="examples"/>.
    /// </summary>
    public static List<PairSource> OwnMistakePairs(LlamaModel sft, ExampleTokenizer tokenize, int padId, QuickstartOptions o,
        IReadOnlyList<SuiteExample> examples, IReadOnlyList<QuickstartSample> greedy, IReadOnlyDictionary<string, List<string>> answers, int seed)
    {
        if (greedy.Count != examples.Count) throw new ArgumentException("one greedy sample per example expected");
        var rng = new Random(seed);
        var pairs = new PairSource?[examples.Count];
        var candidates = new List<(int Example, string Answer)>();
        for (int i = 0; i < examples.Count; i++)
        {
            var e = examples[i];
            if (!greedy[i].Correct) { pairs[i] = new PairSource(e, greedy[i].Generated, true); continue; }
            var others = answers[e.Record.Task].Where(a => a != e.Record.Output).OrderBy(_ => rng.Next()).Take(HardNegativeCandidates);
            candidates.AddRange(others.Select(a => (i, a)));
        }
        // Score the candidates as (chosen, candidate) pairs: the rejected rows' sums rank them.
        var scored = ToPairs(candidates.Select(c => new PairSource(examples[c.Example], c.Answer, false)).ToList(), tokenize, padId);
        var best = new Dictionary<int, (double Logp, string Answer)>();
        for (int s = 0; s < scored.Count; s += o.TuneBatch)
        {
            var items = Enumerable.Range(s, Math.Min(o.TuneBatch, scored.Count - s)).ToArray();
            var rows = PreferenceObjective.Score(sft, scored.Collate(items));
            for (int k = 0; k < items.Length; k++)
            {
                var (ex, answer) = candidates[items[k]];
                double logp = rows.Sums[items.Length + k];
                if (!best.TryGetValue(ex, out var b) || logp > b.Logp) best[ex] = (logp, answer);
            }
        }
        foreach (var (ex, b) in best) pairs[ex] = new PairSource(examples[ex], b.Answer, false);
        return pairs.Where(p => p != null).Select(p => p!).ToList();
    }

    /// <summary>
    /// Up to <paramref name="perFamily"/> new prompts per quickstart family, cycling through all four phrasings, none an
    /// (instruction, input) of <paramref name="suite"/> (small input spaces give fewer).
    /// </summary>
    public static List<SuiteExample> FreshPrompts(IReadOnlyList<SuiteExample> suite, int perFamily, int seed)
    {
        var rng = new Random(seed);
        var seen = suite.Select(s => (s.Record.Instruction, s.Record.Input)).ToHashSet();
        var result = new List<SuiteExample>();
        foreach (var f in TaskFamilies.All.Where(f => QuickstartData.Families.Contains(f.Name)))
            for (int made = 0, tries = 0; made < perFamily && tries < 20 * perFamily; tries++)
            {
                var x = f.Generate(rng);
                var instruction = f.Phrasings[made % f.Phrasings.Length];
                if (!seen.Add((instruction, x))) continue;
                result.Add(new SuiteExample(new InstructionRecord(instruction, x, f.Answer(x), f.Name, new RecordSource("builtin:dpo_prompts", 0, result.Count),
                    Complexity: 0, Category: f.Cluster), f.Cluster, "dpo_train"));
                made++;
            }
        return result;
    }

    /// <summary>Chosen " " + the correct answer, rejected " " + the rejected answer, both in the tuning template.</summary>
    public static PreferenceData ToPairs(IReadOnlyList<PairSource> sources, ExampleTokenizer tokenize, int padId) =>
        PreferenceData.Pairs(sources.Select(p => (
            tokenize.Tokenize(QuickstartData.WithLeadingSpace(p.Example.Record), 0),
            tokenize.Tokenize(QuickstartData.WithLeadingSpace(p.Example.Record with { Output = p.Rejected }), 0))).ToList(), padId);

    private static Dictionary<string, double> AccuracyBySplit(LlamaModel model, IReadOnlyList<PairSource> sources, PreferenceData pairs,
        int itemsPerBatch, out double overall)
    {
        var right = PreferredChosen(model, pairs, itemsPerBatch);
        overall = right.Length == 0 ? double.NaN : right.Count(r => r) / (double)right.Length;
        return Enumerable.Range(0, sources.Count).GroupBy(i => sources[i].Example.Split)
            .ToDictionary(g => g.Key, g => g.Count(i => right[i]) / (double)g.Count());
    }

    private static void WritePairs(string path, IEnumerable<(string Set, PairSource Pair)> rows)
    {
        var lines = rows.Select(r => JsonSerializer.Serialize(new
        {
            set = r.Set, split = r.Pair.Example.Split, task = r.Pair.Example.Record.Task, instruction = r.Pair.Example.Record.Instruction,
            input = r.Pair.Example.Record.Input, chosen = r.Pair.Example.Record.Output, rejected = r.Pair.Rejected, sft_mistake = r.Pair.SftMistake,
        }));
        Checkpoints.AtomicFile.WriteAllText(path, string.Join("\n", lines) + "\n");
    }

    /// <summary>The share of pairs whose chosen completion gets the higher summed log-prob under <paramref name="model"/>.</summary>
    public static double LogProbAccuracy(LlamaModel model, PreferenceData pairs, int itemsPerBatch)
    {
        var right = PreferredChosen(model, pairs, itemsPerBatch);
        return right.Length == 0 ? double.NaN : right.Count(r => r) / (double)right.Length;
    }

    /// <summary>Per pair: does <paramref name="model"/> give the chosen completion the higher summed log-prob.</summary>
    public static bool[] PreferredChosen(LlamaModel model, PreferenceData pairs, int itemsPerBatch)
    {
        var right = new bool[pairs.Count];
        for (int s = 0; s < pairs.Count; s += itemsPerBatch)
        {
            var items = Enumerable.Range(s, Math.Min(itemsPerBatch, pairs.Count - s)).ToArray();
            var rows = PreferenceObjective.Score(model, pairs.Collate(items));
            for (int k = 0; k < items.Length; k++) right[s + k] = rows.Sums[k] > rows.Sums[items.Length + k];
        }
        return right;
    }
}
