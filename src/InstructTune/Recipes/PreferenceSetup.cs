using System.Text.Json;
using InstructTune.Data.Preference;
using InstructTune.Data.Records;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;
using InstructTune.Training.Preference;

namespace InstructTune.Recipes;

/// <summary>
/// The feedback-tuning part of the fine-tune recipe (training.objective dpo | ipo | kto | orpo | simpo | reward): loads and
/// splits the feedback data, builds the reference (adapter disabled, or log-probs precomputed once and cached in
/// run_dir/reference_logps.json — always for full fine-tuning, which keeps no second copy of the weights), the
/// sampler and the step objective, and evaluates held-out items. Everything else (LoRA/QLoRA, optimizer, schedule,
/// accumulation, checkpoints, export) is the recipe's, unchanged.
/// </summary>
public sealed class PreferenceSetup
{
    public const string ReferenceFile = "reference_logps.json";
    public const string StatsFile = "preference_stats.json";

    /// <summary>The log-prob objective (dpo, ipo, kto, orpo, simpo); null for the reward model.</summary>
    public PreferenceObjective? Objective { get; }
    /// <summary>The reward model's objective and head (training.objective reward); null otherwise.</summary>
    public RewardObjective? Reward { get; }
    public Training.Loop.IStepObjective StepObjective => (Training.Loop.IStepObjective?)Objective ?? Reward!;
    public PreferenceSampler Sampler { get; }
    public ReferenceLogps? Reference { get; }
    private readonly PreferenceData? _validation;
    private readonly ReferenceLogps? _validationReference;

    private PreferenceSetup(PreferenceObjective? objective, RewardObjective? reward, PreferenceSampler sampler, ReferenceLogps? reference,
        PreferenceData? validation, ReferenceLogps? validationReference)
    {
        Objective = objective; Reward = reward; Sampler = sampler; Reference = reference; _validation = validation; _validationReference = validationReference;
    }

    /// <summary>
    /// A preference.* key set (to a value other than its default) under an objective whose loss does not read it is
    /// refused naming the key and the objectives that do (the key would be accepted and ignored): all of them under
    /// sft; label_smoothing outside sigmoid-DPO and SimPO; simpo_gamma, cpo_alpha outside SimPO; desirable_weight,
    /// undesirable_weight, score_threshold outside KTO; precompute_ref_log_probs without a reference model (orpo, simpo).
    /// </summary>
    public static void RefuseUnusedKeys(TrainConfig c)
    {
        var o = c.Training.Objective;
        var p = c.Preference; var p0 = new PreferenceSection();
        void Only(bool changed, string key, string usedBy, params TrainingObjective[] objectives)
        {
            if (changed && !objectives.Contains(o))
                throw new ConfigException($"preference.{key}: not used by training.objective {o.ToString().ToLowerInvariant()} (only {usedBy}); remove it");
        }
        Only(p.Beta != p0.Beta, "beta", "dpo, ipo, kto, orpo, simpo", TrainingObjective.Dpo, TrainingObjective.Ipo, TrainingObjective.Kto, TrainingObjective.Orpo, TrainingObjective.Simpo);
        Only(p.LossType != p0.LossType, "loss_type", "dpo", TrainingObjective.Dpo);
        Only(p.LabelSmoothing != p0.LabelSmoothing, "label_smoothing", "dpo with loss_type sigmoid, and simpo", TrainingObjective.Dpo, TrainingObjective.Simpo);
        if (o == TrainingObjective.Dpo && p.LossType == DpoLossType.Hinge && p.LabelSmoothing != 0)
            throw new ConfigException("preference.label_smoothing: the hinge loss (loss_type hinge) has no label smoothing (cDPO is the sigmoid loss's); remove it");
        Only(p.SimpoGamma != p0.SimpoGamma, "simpo_gamma", "simpo", TrainingObjective.Simpo);
        Only(p.CpoAlpha != p0.CpoAlpha, "cpo_alpha", "simpo", TrainingObjective.Simpo);
        Only(p.DesirableWeight != p0.DesirableWeight, "desirable_weight", "kto", TrainingObjective.Kto);
        Only(p.UndesirableWeight != p0.UndesirableWeight, "undesirable_weight", "kto", TrainingObjective.Kto);
        Only(p.ScoreThreshold != p0.ScoreThreshold, "score_threshold", "kto: unpaired records with a score", TrainingObjective.Kto);
        Only(p.PrecomputeRefLogProbs != p0.PrecomputeRefLogProbs, "precompute_ref_log_probs", "dpo, ipo, kto: the objectives with a reference model", TrainingObjective.Dpo, TrainingObjective.Ipo, TrainingObjective.Kto);
        Only(p.CenterRewardsCoefficient != p0.CenterRewardsCoefficient, "center_rewards_coefficient", "reward", TrainingObjective.Reward);
        Only(p.SkipInvalidRecords != p0.SkipInvalidRecords, "skip_invalid_records", "the preference objectives: dpo, ipo, kto, orpo, simpo, reward",
            TrainingObjective.Dpo, TrainingObjective.Ipo, TrainingObjective.Kto, TrainingObjective.Orpo, TrainingObjective.Simpo, TrainingObjective.Reward);
    }

    // The data.* keys feedback loading reads (LoadData): one file, its prompt template, the length cut and the split;
    // validation_path, train_on_inputs have their own refusals below, and pack is moot (pairs are always padded).
    private static readonly HashSet<string> FeedbackDataKeys = ["Path", "Template", "MaxSeqLen", "ValidationFraction", "ValidationPath", "TrainOnInputs", "Pack"];

    /// <summary>A data.* key of SFT data preparation (mixtures, stages, formats, dedup, quality rules, …) set under a
    /// feedback objective is refused naming it: feedback records are read from data.path by their own fields.</summary>
    private static void RefuseSftDataKeys(TrainConfig c)
    {
        var d0 = new DataSection();
        foreach (var p in typeof(DataSection).GetProperties())
        {
            if (FeedbackDataKeys.Contains(p.Name) || p.GetCustomAttributes(typeof(ConfigKeyAttribute), false).Length == 0) continue;
            if (JsonSerializer.Serialize(p.GetValue(c.Data)) != JsonSerializer.Serialize(p.GetValue(d0)))
                throw new ConfigException($"data.{ConfigBinder.SnakeCase(p.Name)}: not used by training.objective {c.Training.Objective.ToString().ToLowerInvariant()} " +
                    "(feedback records are read from data.path, recognised by their fields, with data.template, max_seq_len and validation_fraction); it applies to SFT data; remove it");
        }
    }

    /// <summary>Keys of other objectives that would be silently ignored are refused; preference settings are range-checked.</summary>
    public static void Validate(TrainConfig c)
    {
        RefuseSftDataKeys(c);
        void Require(bool ok, string key, string why) { if (!ok) throw new ConfigException($"{key}: {why}"); }
        var obj = c.Training.Objective.ToString().ToLowerInvariant();
        var p0 = new PreferenceSection();
        if (c.Training.Objective == TrainingObjective.Reward)
        {
            // The Bradley–Terry loss has no temperature, reference or smoothing: settings of the log-prob objectives are refused.
            Require(c.Preference.Beta == p0.Beta, "preference.beta", "is not used by objective reward (Bradley–Terry on the head's rewards)");
            Require(c.Preference.LabelSmoothing == 0, "preference.label_smoothing", "is not used by objective reward");
            Require(!c.Preference.PrecomputeRefLogProbs, "preference.precompute_ref_log_probs", "objective reward has no reference model");
            Require(c.Preference.SimpoGamma == p0.SimpoGamma && c.Preference.CpoAlpha == 0, "preference.simpo_gamma", "and cpo_alpha apply to objective simpo only");
        }
        else Require(c.Preference.CenterRewardsCoefficient == 0, "preference.center_rewards_coefficient", "applies to objective reward only");
        RefuseUnusedKeys(c);
        Require(c.Preference.CenterRewardsCoefficient >= 0, "preference.center_rewards_coefficient", "must be ≥ 0");
        Require(c.Loss.LambdaInstruction == 1 && c.Loss.NextTokenWeight == 0 && c.Loss.LabelSmoothing == 0 && c.Loss.TaskWeighting == TaskWeighting.None,
            "loss", $"lambda_instruction, next_token_weight, label_smoothing and task_weighting shape the SFT loss; objective {obj} has its own (preference section)");
        Require(c.Training.NeftuneAlpha == 0, "training.neftune_alpha", $"NEFTune is applied to SFT only, not to objective {obj}");
        Require(!c.Data.TrainOnInputs, "data.train_on_inputs", $"objective {obj} scores completions only");
        Require(c.Loss.EwcLambda == 0, "loss.ewc_lambda", $"EWC estimates its Fisher on the SFT loss; not available with objective {obj}");
        var p = c.Preference;
        Require(p.Beta > 0, "preference.beta", "must be positive");
        Require(p.LabelSmoothing is >= 0 and < 0.5, "preference.label_smoothing", "must be in [0, 0.5)");
        Require(p.DesirableWeight > 0 && p.UndesirableWeight > 0, "preference.desirable_weight", "and undesirable_weight must be positive");
        Require(p.CpoAlpha >= 0, "preference.cpo_alpha", "must be ≥ 0");
        Require(c.Training.Objective == TrainingObjective.Dpo || p.LossType == DpoLossType.Sigmoid, "preference.loss_type", "applies to objective dpo only");
    }

    /// <summary>Reads, tokenizes and splits the feedback data the config names; writes its stats and rejections under run_dir/data.</summary>
    public static TrainingInputs LoadData(TrainConfig config, ITokenizer tokenizer, string tokenizerPath, int padId, LlamaModel model,
        string modelPath, Action<string>? say)
    {
        var template = PreferenceLoader.Template(config.Data.Template, tokenizerPath);
        var dataDir = Path.Combine(config.Checkpoint.OutputDir, "data");
        Directory.CreateDirectory(dataDir);
        bool paired = config.Training.Objective != TrainingObjective.Kto;
        var (data, stats) = PreferenceLoader.Load(config.Data.Path, paired, tokenizer, template, config.Data.MaxSeqLen, padId,
            config.Preference.ScoreThreshold, config.Preference.SkipInvalidRecords, Path.Combine(dataDir, "rejected.jsonl"));
        PreferenceLoader.WriteStats(Path.Combine(dataDir, StatsFile), stats);
        say?.Invoke($"feedback data: {stats.RecordsRead} records, {stats.ItemsKept} {(paired ? "pairs" : "examples")} kept" +
            (paired ? "" : $" ({stats.Desirable} desirable, {stats.Undesirable} undesirable)") +
            (stats.RejectedByReason.Count > 0 ? ", skipped: " + string.Join(", ", stats.RejectedByReason.Select(r => $"{r.Key} {r.Value}")) : "") +
            (stats.Truncated > 0 ? $", {stats.Truncated} cut at max_seq_len" : ""));
        // TRL's `margin` column is part of the reward model's loss only (RewardTrainer); DPO, KTO and the other
        // log-prob objectives have no such term in TRL either. Said, never silently dropped.
        if (stats.WithMargin > 0)
            say?.Invoke(config.Training.Objective == TrainingObjective.Reward
                ? $"margin: {stats.WithMargin} of {stats.ItemsKept} pairs carry a 'margin' (the loss uses −log σ(r_chosen − r_rejected − margin); pairs without one: 0)"
                : $"warning: data.path: {stats.WithMargin} records carry a 'margin' column; training.objective {config.Training.Objective.ToString().ToLowerInvariant()} does not use it (only objective reward does, as TRL's RewardTrainer)");
        var (train, validation) = SplitItems(data.Count, config.Data.ValidationFraction, config.Training.Seed);
        return new TrainingInputs(model, [], [], padId, ["feedback"], modelPath)
        {
            Preference = data.Subset(train, config.Data.MaxSeqLen),
            PreferenceValidation = validation.Count > 0 ? data.Subset(validation, config.Data.MaxSeqLen) : null,
            Encode = text => tokenizer.Encode(text, addSpecialTokens: true).Ids,
        };
    }

    /// <summary>The same seeded split as SFT data: each item goes to validation with probability f.</summary>
    public static (List<int> Train, List<int> Validation) SplitItems(int count, double f, int seed)
    {
        var train = new List<int>(); var validation = new List<int>();
        var rng = new Rng((ulong)seed * 7919 + 17);
        for (int i = 0; i < count; i++) (rng.NextDouble() < f && count > 1 ? validation : train).Add(i);
        if (train.Count == 0) { train.AddRange(validation); validation.Clear(); }
        return (train, validation);
    }

    /// <summary>Called by the recipe after LoRA injection (so "adapter disabled" is the base) and before any step.</summary>
    public static PreferenceSetup Create(TrainConfig config, TrainingInputs inputs, bool resuming, Action<string>? say = null)
    {
        var options = PreferenceOptions.From(config);
        var data = inputs.Preference!;
        if (options.Objective == TrainingObjective.Reward)
        {
            // A fresh head (seeded); on resume the checkpoint restores it with the other trainable parameters ("score.weight").
            var head = RewardHead.Create(inputs.Model.Config.HiddenSize, (ulong)config.Training.Seed);
            return new PreferenceSetup(null, new RewardObjective(head, config.Preference.CenterRewardsCoefficient, data),
                new PreferenceSampler(data, config.Training.MicroBatchSize, config.Training.Seed), null, inputs.PreferenceValidation, null);
        }
        ReferenceLogps? reference = null, validationReference = null;
        if (options.NeedsReference)
        {
            bool precompute = config.Training.Method == TuningMethod.Full || config.Preference.PrecomputeRefLogProbs;
            if (precompute)
            {
                var path = Path.Combine(config.Checkpoint.OutputDir, ReferenceFile);
                // Scored at the training step's rows (pairs: chosen + rejected), so the scoring pass rents the
                // buffer shapes the steps rent next instead of adding a second set to the pool.
                int rows = config.Training.MicroBatchSize * (options.Paired ? 2 : 1);
                (reference, validationReference) = LoadOrComputeReference(path, inputs, rows, resuming, say);
            }
            else reference = validationReference = ReferenceLogps.AdapterDisabled();
        }
        var objective = new PreferenceObjective(options, data, reference);
        var sampler = new PreferenceSampler(data, config.Training.MicroBatchSize, config.Training.Seed);
        return new PreferenceSetup(objective, null, sampler, reference, inputs.PreferenceValidation, validationReference);
    }

    private sealed record ReferenceCache(string Key, double[] Train, double[]? TrainKl, double[]? Validation, double[]? ValidationKl);

    private static (ReferenceLogps, ReferenceLogps?) LoadOrComputeReference(string path, TrainingInputs inputs, int rows, bool resuming, Action<string>? say)
    {
        var train = inputs.Preference!; var val = inputs.PreferenceValidation;
        var key = DataKey(train) + "/" + (val == null ? "-" : DataKey(val));
        if (File.Exists(path))
        {
            var cached = JsonSerializer.Deserialize<ReferenceCache>(File.ReadAllText(path));
            if (cached != null && cached.Key == key)
            {
                say?.Invoke($"reference log-probs: {path} (cached)");
                return (ReferenceLogps.FromValues(cached.Train, cached.TrainKl),
                    val == null ? null : ReferenceLogps.FromValues(cached.Validation!, cached.ValidationKl));
            }
            if (resuming) throw new ConfigException($"preference.precompute_ref_log_probs: {path} was computed for other data; the reference cannot be recomputed after training started");
        }
        else if (resuming)
            throw new ConfigException($"preference.precompute_ref_log_probs: {path} is missing; the reference cannot be recomputed from trained weights");
        say?.Invoke($"reference log-probs: scoring {train.Sequences.Count + train.KlSequences.Count} sequences once");
        var r = ReferenceLogps.Precompute(inputs.Model, train, rows);
        var v = val == null ? null : ReferenceLogps.Precompute(inputs.Model, val, rows);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        Checkpoints.AtomicFile.WriteAllText(path, JsonSerializer.Serialize(new ReferenceCache(key, [.. r.SequenceSums!], r.KlSums?.ToArray(),
            v?.SequenceSums?.ToArray(), v?.KlSums?.ToArray())));
        return (r, v);
    }

    /// <summary>A fingerprint of the tokenized sequences (FNV-1a over ids and labels), so a cache never serves other data.</summary>
    private static string DataKey(PreferenceData d)
    {
        ulong h = 0xCBF29CE484222325UL;
        void Add(int v) { h ^= (uint)v; h = unchecked(h * 0x100000001B3UL); }
        foreach (var s in d.Sequences.Concat(d.KlSequences)) { Add(s.Length); foreach (var v in s.Ids) Add(v); foreach (var v in s.Labels) Add(v); }
        return $"{d.Count}:{h:x16}";
    }

    /// <summary>Held-out loss and rewards (eval_loss, eval_rewards/accuracies, …); null when there is no held-out data.</summary>
    public Dictionary<string, double>? Evaluate(LlamaModel model, int itemsPerBatch)
    {
        if (_validation == null) return null;
        var m = Reward != null ? Reward.Evaluate(model, _validation, itemsPerBatch)
            : PreferenceObjective.Evaluate(model, Objective!.Options, _validation, _validationReference, itemsPerBatch);
        return m.ToDictionary(kv => "eval_" + kv.Key, kv => kv.Value);
    }
}
