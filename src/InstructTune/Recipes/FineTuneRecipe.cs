using InstructTune.Data.Batching;
using InstructTune.Data.Cache;
using InstructTune.Data.Loading;
using InstructTune.Data.Pipeline;
using InstructTune.Data.Preference;
using InstructTune.Training.Preference;
using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Distributed;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Peft;
using InstructTune.Tokenizers;
using InstructTune.Training.Checkpointing;
using InstructTune.Training.Config;
using InstructTune.Training.Continual;
using InstructTune.Training.Loop;
using InstructTune.Training.Losses;
using InstructTune.Training.Regularizers;

namespace InstructTune.Recipes;

/// <summary>A model and tokenized data, ready to train (from disk in <see cref="FineTuneRecipe.Setup"/>, or made in memory).</summary>
/// <param name="Stages">Curriculum stages in order (null: one stage, <paramref name="Train"/>); <paramref name="Train"/> is then all of them.</param>
/// <param name="StageEpochs">Passes over each stage's list (a mixture list already holds its epochs: 1).</param>
/// <param name="Prompt">The prompt format, recorded in the run and adapter folders (instructtune.json).</param>
public sealed record TrainingInputs(LlamaModel Model, IReadOnlyList<TokenizedExample> Train,
    IReadOnlyList<TokenizedExample> Validation, int PadId, IReadOnlyList<string> TaskNames, string ModelPath = "",
    IReadOnlyList<IReadOnlyList<TokenizedExample>>? Stages = null, IReadOnlyList<int>? StageEpochs = null, PromptFormatRecord? Prompt = null)
{
    /// <summary>Feedback data for the preference objectives (training.objective ≠ sft): train and held-out items.</summary>
    public PreferenceData? Preference { get; init; }
    public PreferenceData? PreferenceValidation { get; init; }
    /// <summary>Each stage's held-out examples and name (continual learning's forgetting matrix), aligned with Stages.</summary>
    public IReadOnlyList<IReadOnlyList<TokenizedExample>>? StageHeldOut { get; init; }
    public IReadOnlyList<string>? StageNames { get; init; }
    /// <summary>The tokenizer as text → ids with special tokens (prompt tuning's init text), when there is one.</summary>
    public Func<string, int[]>? Encode { get; init; }
    /// <summary>ids → text without special tokens (eval.generation_samples), when there is a tokenizer.</summary>
    public Func<int[], string>? Decode { get; init; }
    /// <summary>The tokenizer extended with model.instruction_aware.marker_tokens (saved with the export), or null.</summary>
    public Models.InstructionAware.MarkerVocabulary? Markers { get; init; }
}

/// <summary>What a finished run reports.</summary>
public sealed record TrainingSummary(int Steps, double FinalLoss, double? ValidationLoss, IReadOnlyList<(int Step, double Loss)> LossCurve,
    string RunDir, string ExportDir, bool StoppedEarly, double Seconds);

/// <summary>
/// Full fine-tuning, LoRA and QLoRA as one readable recipe: setup (model, data, adapters, optimizer, schedule,
/// resume) → train (steps, logging, validation, checkpoints, early stopping) → save (the model in HF layout, or
/// the adapter in PEFT layout, under run_dir/final). Everything that can be wrong with the config or inputs is
/// checked in setup, before the first step.
/// Data parallel (mpirun, <see cref="ICommunicator"/>): every rank runs this recipe with the same config; the
/// trainer splits each global batch over the ranks; rank 0 alone prepares the data cache, validates, logs,
/// writes checkpoints and exports, and the others wait for it at the next collective.
/// </summary>
public sealed class FineTuneRecipe : IDisposable
{
    private readonly TrainConfig _config;
    private readonly TrainingInputs _inputs;
    private readonly Trainer _trainer;
    private readonly PeftMethod? _peft;
    /// <summary>The PEFT method trained (null for full fine-tuning).</summary>
    public PeftMethod? Peft => _peft;
    private readonly CheckpointStore _store;
    private readonly int _totalSteps;
    private RunFolder? _folder;
    private readonly PreferenceSetup? _preference;
    private readonly ICommunicator _comm;
    private readonly ContinualStages? _continual;
    private readonly MetaRun? _meta;
    private readonly Action<string>? _say;

    /// <summary>A meta-learning run's parts: the step objective, its inner loop, the held-out tasks and the starting weights.</summary>
    private sealed record MetaRun(MetaLearner Learner, InnerLoop Inner, IReadOnlyList<Parameter> Parameters,
        IReadOnlyList<(string Name, List<TokenizedExample> Train, List<TokenizedExample> HeldOut)> AdaptTasks)
    {
        public float[][]? Start { get; init; }
    }

    public Trainer Trainer => _trainer;
    /// <summary>The model being trained (with its adapters injected).</summary>
    public LlamaModel Model => _inputs.Model;
    public int TotalSteps => _totalSteps;
    /// <summary>Optimizer steps of each curriculum stage (null with one stage).</summary>
    public IReadOnlyList<long>? StageSteps { get; private set; }
    /// <summary>The data of a run set up from disk (stats per dataset and stage); null for in-memory inputs.</summary>
    public PreparedData? Data { get; private set; }
    public string RunDir => _config.Checkpoint.OutputDir;

    /// <summary>Hook for tests: called inside every checkpoint write, before the files are published.</summary>
    public static Action<string>? OnCheckpointWriting { get; set; }

    private FineTuneRecipe(TrainConfig config, TrainingInputs inputs, string? resume, ICommunicator comm, RunFolder? folder = null,
        RunInfo? run = null, bool resumeForce = false, Action<string>? say = null)
    {
        _config = config;
        _say = say;
        _comm = comm;
        _inputs = inputs;
        _folder = folder;
        var t = config.Training;
        var model = inputs.Model;
        bool feedback = config.Training.Objective != TrainingObjective.Sft;
        if (feedback ? inputs.Preference is not { Count: > 0 } : inputs.Train.Count == 0)
            throw new ConfigException("data.path: the dataset has no usable examples");
        RefuseWhatCannotTrain(config, inputs, feedback, say);
        if (config.Eval.GenerationSamples > 0 && !feedback && (inputs.Validation.Count == 0 || inputs.Decode == null))
            throw new ConfigException(inputs.Validation.Count == 0
                ? "eval.generation_samples: there are no held-out examples to generate from; set data.validation_path or data.validation_fraction > 0"
                : "eval.generation_samples: the run has no tokenizer to decode generations with", "eval.generation_samples");

        if (model.Config is var mc && (t.Method == TuningMethod.PromptTuning || t.Method == TuningMethod.PrefixTuning))
        {
            string key = t.Method == TuningMethod.PromptTuning ? "prompt_tuning" : "prefix_tuning";
            int p = t.Method == TuningMethod.PromptTuning ? config.PromptTuning.NumVirtualTokens : config.PrefixTuning.NumVirtualTokens;
            int longest = inputs.Train.Concat(inputs.Validation).Select(e => e.Ids.Length).DefaultIfEmpty(0).Max();
            if (p + longest > mc.MaxPositionEmbeddings)
                throw new ConfigException($"{key}.num_virtual_tokens: {p} virtual tokens + the longest example's {longest} tokens exceed the model's max_position_embeddings {mc.MaxPositionEmbeddings}");
        }
        _peft = InjectPeft(config, inputs, resume, comm, folder, say);
        if (config.Model.WeightStorage == WeightStorage.Bfloat16) FrozenBase.ToBf16(model);
        AttachInstructionAware(config, model, inputs.TaskNames);   // after the PEFT freeze: its parameters always train
        // Marker tokens under LoRA/QLoRA: the embedding and lm_head are frozen, so their new rows train as their own parameters.
        if (inputs.Markers is { } mv && _peft != null)
        {
            try { model.AttachTokenRows(mv.FirstId); }
            catch (ArgumentException e) { throw new ConfigException($"{Models.InstructionAware.MarkerTokens.Key}: {e.Message}", Models.InstructionAware.MarkerTokens.Key); }
        }
        var trainable = model.NamedParameters().Where(p => !p.Parameter.Frozen).ToList();

        Parameter? logVars = null;
        if (config.Loss.TaskWeighting == TaskWeighting.Uncertainty)
        {
            logVars = new Parameter(Math.Max(1, inputs.TaskNames.Count));
            trainable.Add(("loss.task_log_variance", logVars));
        }
        var objective = new ObjectiveOptions(config.Loss.NextTokenWeight, config.Loss.LambdaInstruction, (float)config.Loss.LabelSmoothing,
            TaskWeights.Compute(config.Loss.TaskWeighting, inputs.TaskNames, inputs.Train, config.Loss.TaskWeights), logVars,
            (float)t.NeftuneAlpha, t.NeftuneAlpha > 0 ? new Rng((ulong)t.Seed ^ 0x4E45465455UL) : null,
            TaskHeadWeight: config.Model.InstructionAware.TaskHeadWeight, RepresentationAlpha: config.Model.InstructionAware.RepresentationAlpha,
            TemperatureTargets: TemperatureTargets(config, inputs.TaskNames), TemperatureWeight: config.Model.InstructionAware.TemperatureWeight);

        var batchOptions = new BatchOptions(config.Data.Pack ? BatchMode.Packed : BatchMode.Bucketed, t.MicroBatchSize, config.Data.MaxSeqLen);
        IBatchSource batches;
        if (feedback)
        {
            if (comm.Size > 1) throw new ConfigException("training.objective: feedback objectives run in one process; start them without mpirun", "training.objective");
            _preference = PreferenceSetup.Create(config, inputs, resume != null, Console.Error.WriteLine);
            if (_preference.Reward != null) trainable.Add((RewardHead.TensorName, _preference.Reward.Head.Weight));   // PEFT's modules_to_save ["score"]
            batches = _preference.Sampler;
            int stepsPerEpoch = Math.Max(1, _preference.Sampler.BatchesPerEpoch / (t.GradientAccumulationSteps * comm.Size));
            _totalSteps = t.MaxSteps > 0 ? t.MaxSteps : t.Epochs * stepsPerEpoch;
        }
        else if (inputs.Stages is not { Count: > 1 })
        {
            var sampler = new DataSampler(inputs.Stages is { Count: 1 } one ? one[0] : inputs.Train, batchOptions, inputs.PadId, t.Seed);
            int epochs = inputs.StageEpochs is { Count: 1 } e ? e[0] : t.Epochs;
            int stageSteps = config.Data.Stages.Count > 0 && config.Data.Stages[0].MaxSteps > 0 ? config.Data.Stages[0].MaxSteps
                : epochs * Math.Max(1, sampler.BatchesPerEpoch / (t.GradientAccumulationSteps * comm.Size));
            _totalSteps = t.MaxSteps > 0 ? t.MaxSteps : stageSteps;
            batches = new SamplerBatchSource(sampler);
        }
        else
        {
            // Stage k serves its steps (data.stages[k].max_steps, else its epochs' worth), then stage k+1 starts.
            var samplers = inputs.Stages.Select((st, k) => new DataSampler(st, batchOptions, inputs.PadId, t.Seed + 1000 * k)).ToList();
            var steps = samplers.Select((sm, k) => k < config.Data.Stages.Count && config.Data.Stages[k].MaxSteps > 0 ? (long)config.Data.Stages[k].MaxSteps
                : (long)(inputs.StageEpochs?[k] ?? 1) * Math.Max(1, sm.BatchesPerEpoch / (t.GradientAccumulationSteps * comm.Size))).ToList();
            StageSteps = steps;
            _totalSteps = t.MaxSteps > 0 ? t.MaxSteps : (int)steps.Sum();
            batches = new StagedBatchSource(samplers, steps.Select(x => x * t.GradientAccumulationSteps * comm.Size).ToList(), t.Seed);
        }

        var optimizer = new AdamW(ParamGroup.DecayMatricesOnly(trainable.Select(p => p.Parameter), (float)t.WeightDecay),
            (float)t.LearningRate, (float)t.AdamBeta1, (float)t.AdamBeta2, (float)t.AdamEpsilon);
        var schedule = new Engine.Optim.LrSchedule(t.LrScheduler switch
        {
            Training.Config.LrSchedule.Constant => LrScheduleKind.Constant,
            Training.Config.LrSchedule.Linear => LrScheduleKind.Linear,
            _ => LrScheduleKind.Cosine,
        }, (float)t.LearningRate, t.WarmupSteps, _totalSteps);
        // Per-stage learning rates (data.stages[k].learning_rate, continual.restart_schedule): Training/Continual/StageSchedule.cs.
        Func<int, float>? stageLr = null;
        if (!feedback && (config.Data.Stages.Any(st => st.LearningRate > 0) || (config.Continual.RestartSchedule && StageSteps != null)))
        {
            var stageSteps = StageSteps ?? [_totalSteps];
            var peaks = stageSteps.Select((_, k) => (float)(k < config.Data.Stages.Count && config.Data.Stages[k].LearningRate > 0
                ? config.Data.Stages[k].LearningRate : t.LearningRate)).ToList();
            stageLr = new StageSchedule(schedule.Kind, t.WarmupSteps, _totalSteps, stageSteps, peaks, config.Continual.RestartSchedule).LearningRate;
        }
        // meta.algorithm: every step is a Reptile / FO-MAML meta-iteration over the task labels (Training/Continual/MetaLearning.cs).
        var metaParameters = trainable.Select(p => p.Parameter).Where(p => p != logVars).ToList();
        var meta = config.Meta.Algorithm == MetaAlgorithm.Off ? null : SetupMeta(config, inputs, metaParameters, objective, feedback, comm);
        _trainer = new Trainer(model, trainable, optimizer, batches,
            new TrainerOptions(t.GradientAccumulationSteps, (float)t.MaxGradNorm, schedule, objective, inputs.TaskNames.Count,
                t.ActivationCheckpointing, t.SpikeFactor, t.MaxBadSteps, t.Precision == TrainingPrecision.Bf16) { LearningRateAt = stageLr })
        { StepObjective = (IStepObjective?)_preference?.StepObjective ?? meta?.Learner };
        if (meta != null) _meta = meta with { Start = config.Meta.AdaptTasks.Count > 0 ? MetaLearner.Snapshot(metaParameters) : null };
        if (comm.Size > 1) _trainer.Distribute(comm, config.Distributed.ZeroStage, config.Distributed.BucketMb);
        if (objective.NoiseRng != null) _trainer.Rngs["neftune"] = objective.NoiseRng;
        if (_peft?.Rng != null) _trainer.Rngs["lora_dropout"] = _peft.Rng;

        var frozenOrAll = trainable.Select(p => p.Parameter).Where(p => p != logVars).ToList();
        var protectedNamed = trainable.Where(p => p.Parameter != logVars).ToList();
        if (config.Loss.L2SpLambda > 0) _trainer.Regularizers.Add(new L2SpRegularizer(frozenOrAll, config.Loss.L2SpLambda));
        if (config.Loss.EwcReferencePath.Length > 0)
        {
            // A Fisher and anchor written by another run (run_dir/stages/stage-K/fisher.safetensors) protect that run's task.
            var (fisher, anchor) = StageFisher.Read(config.Loss.EwcReferencePath, protectedNamed, "loss.ewc_reference_path");
            _trainer.Regularizers.Add(new EwcRegularizer(frozenOrAll, fisher, config.Loss.EwcLambda, anchor));
        }
        else if (config.Loss.EwcLambda > 0 && StageSteps == null) _trainer.Regularizers.Add(MakeEwc(frozenOrAll, objective));
        if (config.Continual.Gem != GemMode.Off && (feedback || StageSteps == null))
            throw new ConfigException("continual.gem: needs two or more stages (data.datasets[].stage) of instruction data: the memory holds earlier stages' examples", "continual.gem");
        if (config.Continual.L2PreviousLambda > 0 && (feedback || StageSteps == null))
            throw new ConfigException("continual.l2_previous_lambda: needs two or more stages (data.datasets[].stage) of instruction data: it pulls each stage toward the previous stage's final weights", "continual.l2_previous_lambda");
        if (config.Training.Method == TuningMethod.Progressive && (feedback || config.Loss.EwcLambda > 0 || config.Continual.Gem != GemMode.Off || comm.Size > 1))
            throw new ConfigException("training.method: progressive columns keep every earlier stage exactly; they are not combined with " +
                "loss.ewc_lambda, continual.gem, feedback objectives or mpirun", "training.method");
        if (!feedback && StageSteps != null)
        {
            if (comm.Size > 1 && config.Continual.Gem != GemMode.Off)
                throw new ConfigException("continual.gem: the episodic-memory projection runs in one process (not under mpirun with several ranks yet)", "continual.gem");
            if (comm.Size > 1 && config.Loss.EwcLambda > 0)
                throw new ConfigException("loss.ewc_lambda: EWC across data.stages runs in one process (not under mpirun with several ranks yet)", "loss.ewc_lambda");
            var stageData = inputs.Stages!.Select((st, k) => new StageData(inputs.StageNames is { } names && k < names.Count ? names[k] : $"stage {k + 1}", st,
                inputs.StageHeldOut is { } held && k < held.Count ? held[k] : [])).ToList();
            // Under mpirun every rank trains the same stages; the forgetting report is not written there yet.
            _continual = new ContinualStages(config, model, _trainer, stageData, StageSteps, _totalSteps, protectedNamed, inputs.PadId, say,
                report: comm.Size == 1, baseModelPath: inputs.ModelPath);
        }

        _store = new CheckpointStore(config.Checkpoint.OutputDir, Math.Max(1, config.Checkpoint.KeepLast));
        if (folder != null && run != null) folder.Record(run, resume != null, resumeForce, say);
        if (resume != null)
        {
            // Every rank reads the checkpoint (the run folder must be reachable from every node, as model.path is).
            TrainerCheckpoint.Restore(_trainer, CheckpointStore.Resolve(resume, config.Checkpoint.OutputDir));
            _trainer.Zero?.DropForeignState();
            // The steps after the checkpoint are replayed and logged again (by rank 0): drop their old lines.
            int dropped = comm.Rank != 0 ? 0
                : Training.Logging.JsonlMetricsLogger.TruncateAfter(Path.Combine(config.Checkpoint.OutputDir, "metrics.jsonl"), _trainer.Step);
            if (dropped > 0) say?.Invoke($"resume at step {_trainer.Step}: {dropped} metrics.jsonl line(s) of later steps dropped (they are replayed)");
        }
    }

    /// <summary>
    /// meta.algorithm: the meta-training tasks (the training examples grouped by task label, without meta.adapt_tasks)
    /// and the held-out tasks of the fast-adaptation comparison (their training examples and validation split).
    /// </summary>
    private MetaRun SetupMeta(TrainConfig config, TrainingInputs inputs, List<Parameter> parameters, ObjectiveOptions objective, bool feedback,
        ICommunicator comm)
    {
        const string key = "meta.algorithm";
        if (feedback) throw new ConfigException($"{key}: meta-learning trains on instruction tasks (training.objective sft)", key);
        if (inputs.Stages is { Count: > 1 }) throw new ConfigException($"{key}: cannot be combined with data.stages (stages train in sequence; meta-learning samples tasks)", key);
        if (comm.Size > 1) throw new ConfigException($"{key}: meta-learning runs in one process (not under mpirun with several ranks yet)", key);
        string Name(int id) => id >= 0 && id < inputs.TaskNames.Count ? inputs.TaskNames[id] : $"task {id}";
        var adapt = new List<(string, List<TokenizedExample>, List<TokenizedExample>)>();
        foreach (var name in config.Meta.AdaptTasks)
        {
            int id = inputs.TaskNames.ToList().IndexOf(name);
            if (id < 0) throw new ConfigException($"meta.adapt_tasks: no task labelled '{name}' in the data (tasks: {string.Join(", ", inputs.TaskNames)})", "meta.adapt_tasks");
            var train = inputs.Train.Where(e => e.TaskId == id && e.LearnedTokens > 0).ToList();
            var held = inputs.Validation.Where(e => e.TaskId == id && e.LearnedTokens > 0).ToList();
            if (train.Count == 0 || held.Count == 0)
                throw new ConfigException($"meta.adapt_tasks: task '{name}' has {train.Count} training and {held.Count} held-out examples; it needs both " +
                    "(its held-out examples are its share of data.validation_fraction)", "meta.adapt_tasks");
            adapt.Add((name, train, held));
        }
        var tasks = inputs.Train.Where(e => e.LearnedTokens > 0 && !config.Meta.AdaptTasks.Contains(Name(e.TaskId)))
            .GroupBy(e => e.TaskId).OrderBy(g => g.Key).Select(g => (IReadOnlyList<TokenizedExample>)g.ToList()).ToList();
        if (tasks.Count < 2)
            throw new ConfigException($"{key}: meta-learning needs a family of at least 2 tasks (task labels) outside meta.adapt_tasks; the data has {tasks.Count}", key);
        var t = config.Training;
        var inner = new InnerLoop(inputs.Model, parameters, t.MicroBatchSize, config.Data.MaxSeqLen, inputs.PadId, objective, inputs.TaskNames.Count,
            t.ActivationCheckpointing);
        var learner = new MetaLearner(parameters, tasks, config.Meta, inner, t.Seed, () => _trainer.Step);
        return new MetaRun(learner, inner, parameters, adapt);
    }

    /// <summary>
    /// Injects training.method's adapters. IaSFT first estimates the Fisher on iasft.fisher_batches training batches
    /// (bucketed, micro_batch_size rows, the response loss), and keeps its mask in run_dir/iasft_mask so a resumed run
    /// trains the same entries without estimating again.
    /// </summary>
    private static PeftMethod? InjectPeft(TrainConfig config, TrainingInputs inputs, string? resume, ICommunicator comm, RunFolder? folder, Action<string>? say)
    {
        if (config.Training.Method != TuningMethod.Iasft) return PeftRegistry.Inject(inputs.Model, config, inputs.Encode, stages: inputs.Stages?.Count ?? 1);
        string maskDir = Path.Combine(config.Checkpoint.OutputDir, "iasft_mask");
        bool reuse = resume != null && Directory.Exists(maskDir);
        var sampler = new DataSampler(inputs.Train, new BatchOptions(BatchMode.Bucketed, config.Training.MicroBatchSize, config.Data.MaxSeqLen), inputs.PadId, config.Training.Seed);
        var response = new ObjectiveOptions();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var peft = PeftRegistry.Inject(inputs.Model, config, inputs.Encode, reuse ? null : _ =>
        {
            var b = sampler.Next();
            var counts = InstructionObjective.Count([b], response, inputs.TaskNames.Count);
            if (counts.InstructionTokens == 0) return;   // a batch without response tokens adds a zero gradient
            using var tape = Tape.Record();
            tape.Backward(InstructionObjective.Forward(inputs.Model, b, counts, response, true).Loss);
        }, reuse ? maskDir : null);
        var layers = InstructTune.Peft.Iasft.IasftInjector.Find(inputs.Model);
        long k = layers.Sum(l => (long)l.Layer.Index.Length), n = layers.Sum(l => (long)l.Layer.InFeatures * l.Layer.OutFeatures);
        say?.Invoke(reuse ? $"iasft: mask of {k:N0} entries reused from {maskDir}"
            : $"iasft: diagonal Fisher over {config.Iasft.FisherBatches} batch(es) in {clock.Elapsed.TotalSeconds:F1} s; {k:N0} entries selected ({(config.Iasft.Selection == InstructTune.Peft.Iasft.FisherSelection.Global ? "global" : "per_tensor")}, fraction {config.Iasft.Fraction}) in {layers.Count} weight matrices of {n:N0} entries");
        if (!reuse && folder != null && comm.Rank == 0) peft!.Save(inputs.Model, maskDir, inputs.ModelPath);
        return peft;
    }

    /// <summary>
    /// One line for the start of a run: the method, trainable parameters (and their share), and the memory planned for
    /// them — float32 weights, gradients and AdamW's two moments (16 bytes each) — beside the frozen weights
    /// (float32 parameters, NF4 codes for QLoRA bases, bf16 for model.weight_storage bfloat16, with what that saves
    /// against float32).
    /// </summary>
    public string Footprint()
    {
        long trainable = _trainer.Trainable.Sum(t => (long)t.Parameter.Length);
        var all = _inputs.Model.NamedParameters().ToList();
        long frozen = all.Where(p => p.Parameter.Frozen).Sum(p => (long)p.Parameter.Length);
        var compressed = FrozenBase.CompressedLayers(_inputs.Model);
        long cParams = compressed.Sum(q => (long)q.InFeatures * q.OutFeatures), cBytes = compressed.Sum(q => q.WeightBytes);
        var nf4 = compressed.OfType<Peft.Qlora.Nf4Linear>().ToList();
        var bf16 = compressed.OfType<Bf16Linear>().ToList();
        long nf4Bytes = nf4.Sum(q => q.WeightBytes), bf16Bytes = bf16.Sum(q => q.WeightBytes);
        long total = trainable + frozen + cParams;
        const double MiB = 1 << 20;
        string detail = (nf4.Count > 0 ? $" ({nf4Bytes / MiB:F1} MiB of it NF4)" : "")
            + (bf16.Count > 0 ? $" ({bf16Bytes / MiB:F1} MiB of it bf16 in {bf16.Count} layers: {bf16Bytes / MiB:F1} MiB saved against float32)" : "");
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"method {_peft?.Name ?? "full"}: {trainable:N0} trainable parameters of {total:N0} ({100.0 * trainable / Math.Max(1, total):F3} %); " +
            $"memory: {trainable * 16 / MiB:F1} MiB trainable (weights + gradients + AdamW moments), " +
            $"{(frozen * 4 + cBytes) / MiB:F1} MiB frozen{detail}");
    }

    /// <summary>
    /// Refuses, before step 1, a run that cannot learn or cannot fit: max_seq_len beyond the model's positions, and
    /// zero learned tokens (every response truncated away); warns per task when more than 10 % of its examples lost
    /// their whole response to truncation.
    /// </summary>
    private static void RefuseWhatCannotTrain(TrainConfig config, TrainingInputs inputs, bool feedback, Action<string>? say)
    {
        int maxPos = inputs.Model.Config.MaxPositionEmbeddings;
        if (maxPos > 0 && config.Data.MaxSeqLen > maxPos)
            throw new ConfigException($"data.max_seq_len: {config.Data.MaxSeqLen} exceeds the model's max_position_embeddings {maxPos}; set data.max_seq_len ≤ {maxPos}", "data.max_seq_len");
        if (feedback) return;   // preference pairs: their own checks (PreferenceData)
        bool onlyResponses = config.Loss.NextTokenWeight == 0;
        long learned = inputs.Train.Sum(e => (long)e.LearnedTokens);
        if (onlyResponses && learned == 0)
            throw new ConfigException(
                $"data.max_seq_len: the {inputs.Train.Count} training examples have 0 learned tokens at data.max_seq_len={config.Data.MaxSeqLen} " +
                "(every response was truncated away or masked): nothing to learn. Raise data.max_seq_len, shorten the prompts, or set loss.next_token_weight", "data.max_seq_len");
        foreach (var group in inputs.Train.GroupBy(e => e.TaskId))
        {
            int lost = group.Count(e => e.LearnedTokens == 0 && e.TruncatedTokens > 0), n = group.Count();
            if (onlyResponses && lost * 10 > n)
            {
                var name = group.Key >= 0 && group.Key < inputs.TaskNames.Count ? inputs.TaskNames[group.Key] : $"task {group.Key}";
                say?.Invoke($"warning: {name}: {lost} of {n} examples ({100.0 * lost / n:F0} %) lost their whole response to truncation at data.max_seq_len={config.Data.MaxSeqLen}");
            }
        }
    }

    /// <summary>model.instruction_aware: adds the variants' parameters (trainable) to the model; refuses what cannot
    /// give them segment ids or a place in the sequence.</summary>
    private static void AttachInstructionAware(TrainConfig config, LlamaModel model, IReadOnlyList<string> tasks)
    {
        var ia = InstructionAwareOptions(config, tasks.Count);
        const string key = "model.instruction_aware";
        if (!ia.Any || model.InstructionAware != null) return;
        if (ia.TaskClasses > 0 && tasks.Count < 2)
            throw new ConfigException($"{key}.task_head_weight: the dual head classifies the dataset's tasks, and the training data has {tasks.Count} " +
                $"({string.Join(", ", tasks)}); give examples a task (data.datasets entries with a task name, or a task field per record)", key + ".task_head_weight");
        try { model.AttachInstructionAware(ia); }
        catch (ArgumentException e)
        {
            string k = key + (e.Message.StartsWith("two_stream_layers", StringComparison.Ordinal) ? ".two_stream_layers" : ".gate_layers");
            throw new ConfigException($"{k}: {e.Message}", k);
        }
    }

    /// <summary>The variants model.instruction_aware asks for (the dual head has one class per task of the data).</summary>
    public static Models.InstructionAware.InstructionAwareOptions InstructionAwareOptions(TrainConfig config, int tasks = 0)
    {
        var s = config.Model.InstructionAware;
        return new() { SegmentEmbeddings = s.SegmentEmbeddings, InstructionEmbedding = s.InstructionEmbedding, GateLayers = [.. s.GateLayers], GateBiasInit = (float)s.GateBiasInit,
            TwoStreamLayers = s.TwoStreamLayers, TaskClasses = s.TaskHeadWeight > 0 ? Math.Max(tasks, 1) : 0, RepresentationHead = s.RepresentationAlpha > 0,
            BiasedAttention = s.BiasedAttention, CotWidth = s.CotWidth, Seed = (ulong)config.Training.Seed,
            TemperatureRange = s.TemperatureTargets is { Count: > 0 } && s.TemperatureWeight > 0 ? ((float)s.TemperatureMin, (float)s.TemperatureMax) : null };
    }

    /// <summary>model.instruction_aware.temperature_targets by task id (NaN: no target), or null when off; a task the
    /// data does not have, a target outside [temperature_min, temperature_max] or a reversed range is refused naming the key.</summary>
    private static float[]? TemperatureTargets(TrainConfig config, IReadOnlyList<string> taskNames)
    {
        var s = config.Model.InstructionAware;
        if (s.TemperatureTargets is not { Count: > 0 } targets || s.TemperatureWeight == 0) return null;
        const string key = "model.instruction_aware.temperature_targets";
        if (s.TemperatureMax < s.TemperatureMin)
            throw new ConfigException($"model.instruction_aware.temperature_max ({s.TemperatureMax}) is below temperature_min ({s.TemperatureMin})", "model.instruction_aware.temperature_max");
        var t = Enumerable.Repeat(float.NaN, taskNames.Count).ToArray();
        foreach (var (name, tau) in targets)
        {
            int k = taskNames.ToList().IndexOf(name);
            if (k < 0) throw new ConfigException($"{key} names task '{name}', which the dataset does not have (tasks: {string.Join(", ", taskNames)})", key);
            if (tau < s.TemperatureMin || tau > s.TemperatureMax)
                throw new ConfigException($"{key}.{name} = {tau} is outside [temperature_min, temperature_max] = [{s.TemperatureMin}, {s.TemperatureMax}]", key);
            t[k] = (float)tau;
        }
        return t;
    }

    /// <summary>EWC's Fisher on the reference set (or the training data when none is given), at the starting weights.</summary>
    private EwcRegularizer MakeEwc(List<Parameter> parameters, ObjectiveOptions objective)
    {
        var reference = _inputs.Validation.Count > 0 ? _inputs.Validation : _inputs.Train;
        var sampler = new DataSampler(reference, new BatchOptions(BatchMode.Bucketed, _config.Training.MicroBatchSize, _config.Data.MaxSeqLen), _inputs.PadId, 0);
        int batches = Math.Min(8, sampler.BatchesPerEpoch);
        var fisher = EwcRegularizer.EstimateFisher(parameters, batches, _ =>
        {
            var b = sampler.Next();
            var counts = InstructionObjective.Count([b], objective, _inputs.TaskNames.Count);
            using var tape = Tape.Record();
            tape.Backward(InstructionObjective.Forward(_inputs.Model, b, counts, objective, true).Loss);
        });
        return new EwcRegularizer(parameters, fisher, _config.Loss.EwcLambda);
    }

    /// <summary>Loads the model, tokenizer and data the config names; refuses bad paths and settings with the key named.</summary>
    /// <param name="start">How to treat a folder that already holds a run (default: refuse unless resuming).</param>
    public static FineTuneRecipe Setup(TrainConfig config, string? resume = null, Action<string>? say = null, ICommunicator? comm = null,
        RunStartOptions? start = null)
    {
        comm ??= SingleProcess.Instance;
        var modelPath = config.Model.Path;
        if (string.IsNullOrEmpty(modelPath)) throw new ConfigException("model.path is required (a Hugging Face checkpoint folder)");
        if (!File.Exists(Path.Combine(modelPath, "config.json"))) throw new ConfigException($"model.path: no config.json in '{modelPath}'");
        Validate(config);
        if (config.Data.Datasets.Count > 0 || !Directory.Exists(config.Data.Path) || !File.Exists(Path.Combine(config.Data.Path, PrepareRecipe.PreparedFile)))
            PrepareRecipe.Resolve(config.Data);   // bad data keys are refused before the model loads
        start ??= new RunStartOptions();
        var startedAt = DateTimeOffset.UtcNow.ToString("O");
        // Rank 0 holds the run folder for the whole job (the other ranks of a data-parallel run share it).
        var folder = comm.Rank == 0 ? RunFolder.Acquire(config.Checkpoint.OutputDir, resume != null, start, say) : null;
        try
        {
            var (inputs, dataFingerprint, data) = LoadInputs(config, modelPath, say, comm);
            var run = new RunInfo(CacheManifest.Sha256OfText(ConfigLoader.ToYaml(config)), RunFolder.ModelFingerprint(modelPath), dataFingerprint,
                config.Training.Method.ToString().ToLowerInvariant(), startedAt, Environment.ProcessId);
            return new FineTuneRecipe(config, inputs, resume, comm, folder, run, start.ResumeForce, say) { Data = data };
        }
        catch { folder?.Dispose(); throw; }
    }

    private static (TrainingInputs Inputs, string DataFingerprint, PreparedData? Data) LoadInputs(TrainConfig config, string modelPath, Action<string>? say, ICommunicator comm)
    {
        var tokenizerPath = string.IsNullOrEmpty(config.Model.Tokenizer) ? modelPath : config.Model.Tokenizer;
        say?.Invoke($"tokenizer: {tokenizerPath}");
        var tokenizer = TokenizerLoader.Load(tokenizerPath);
        // model.instruction_aware.marker_tokens: the tokenizer gains the markers, the model rows for them (mean-initialised).
        var markers = Models.InstructionAware.MarkerTokens.FromConfig(config, tokenizer, tokenizerPath, LlamaConfig.Load(modelPath).VocabSize);
        if (markers != null)
        {
            tokenizer = markers.Tokenizer;
            say?.Invoke($"instruction markers: {string.Join(", ", markers.Markers.Select((m, i) => $"{m} = id {markers.FirstId + i}"))} (vocabulary resized to {markers.VocabSize}, new rows at the mean embedding)");
        }
        say?.Invoke($"model: {modelPath}");
        var model = LlamaCheckpoint.Load(modelPath, markers?.VocabSize ?? 0);
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new ConfigException($"model.tokenizer: the tokenizer has {tokenizer.VocabSize} tokens but the model's vocabulary is {model.Config.VocabSize}");
        int padId = tokenizer.PadId ?? tokenizer.EosId ?? 0;
        if (config.Training.Objective != TrainingObjective.Sft)
        {
            say?.Invoke($"feedback data: {config.Data.Path} (objective {config.Training.Objective}, template {config.Data.Template})");
            var feedbackInputs = PreferenceSetup.LoadData(config, tokenizer, tokenizerPath, padId, model, modelPath, say);
            var dataSha = File.Exists(config.Data.Path) ? "sha256:" + CacheManifest.Sha256OfFile(config.Data.Path) : config.Data.Path;
            return (feedbackInputs, dataSha, null);
        }
        // Rank 0 tokenizes into the run's data cache first; the other ranks then find it and reuse it.
        PreparedData Prepare() => PrepareRecipe.Run(config, tokenizer, tokenizerPath, Path.Combine(config.Checkpoint.OutputDir, "data"), say: comm.Rank == 0 ? say : null);
        PreparedData? first = comm.Rank == 0 ? Prepare() : null;
        comm.Barrier("data preparation on rank 0");
        var data = first ?? Prepare();
        if (comm.Rank == 0) foreach (var line in DataReport.Lines(data, config.Data.MaxSeqLen)) say?.Invoke(line);
        var inputs = new TrainingInputs(model, data.Stages.SelectMany(x => x).ToList(), data.Validation, padId, data.TaskNames, modelPath,
            data.Stages, data.StageEpochs, data.Prompt.ToRecord(tokenizer))
        {
            Encode = text => tokenizer.Encode(text, addSpecialTokens: true).Ids,
            Decode = ids => tokenizer.Decode(ids, skipSpecialTokens: true),
            Markers = markers,
            // Stage k's held-out set: the validation split of the datasets of stage k (data.datasets[].stage).
            StageHeldOut = StageNumbers(data).Select(n => (IReadOnlyList<TokenizedExample>)data.Datasets.Where(x => x.Stage == n).SelectMany(x => x.Validation).ToList()).ToList(),
            StageNames = StageNumbers(data).Select(n => string.Join("+", data.Datasets.Where(x => x.Stage == n && !x.PlainText).Select(x => x.Name))).ToList(),
        };
        if (comm.Rank == 0) PromptFormatFile.Write(config.Checkpoint.OutputDir, inputs.Prompt!);
        var prepared = Path.Combine(data.OutDir, PrepareRecipe.PreparedFile);
        var fingerprint = File.Exists(prepared) ? "sha256:" + CacheManifest.Sha256OfFile(prepared) : data.OutDir;
        return (inputs, fingerprint, data);
    }

    private static List<int> StageNumbers(PreparedData data) => data.Datasets.Select(x => x.Stage).Distinct().Order().ToList();

    public static FineTuneRecipe FromInputs(TrainConfig config, TrainingInputs inputs, string? resume = null, ICommunicator? comm = null)
    {
        Validate(config);
        return new FineTuneRecipe(config, inputs, resume, comm ?? SingleProcess.Instance);
    }

    /// <summary>Cross-key rules the per-key ranges cannot express (`itune config validate` runs these too).</summary>
    public static void Validate(TrainConfig c)
    {
        void Require(bool ok, string key, string why) { if (!ok) throw new ConfigException($"{key}: {why}", key); }
        Require(c.Loss.EwcReferencePath.Length == 0 || c.Loss.EwcLambda > 0, "loss.ewc_reference_path",
            "needs loss.ewc_lambda > 0 (the strength of the penalty around the saved anchor)");
        Require(c.Loss.EwcReferencePath.Length == 0 || File.Exists(c.Loss.EwcReferencePath), "loss.ewc_reference_path",
            $"'{c.Loss.EwcReferencePath}' does not exist (a fisher.safetensors written under run_dir/stages/stage-K/)");
        Require(c.Model.WeightStorage == WeightStorage.Float32 || c.Training.Method != TuningMethod.Full, "model.weight_storage",
            "bfloat16 stores frozen base weights, and training.method full trains every weight (float32 master weights); use a PEFT method (lora, qlora, ia3, prompt_tuning, prefix_tuning) or weight_storage float32");
        Require(c.Eval.GenerationSamples == 0 || c.Eval.EverySteps > 0, "eval.generation_samples",
            "generations are written at each evaluation: set eval.every_steps > 0");
        Require(c.Eval.GenerationSamples == 0 || c.Training.Objective == TrainingObjective.Sft, "eval.generation_samples",
            "is written by training.objective sft only (feedback objectives evaluate preference pairs)");
        Require(c.Data.ValidationPath.Length == 0 || c.Training.Objective == TrainingObjective.Sft, "data.validation_path",
            "is read by training.objective sft only; feedback objectives hold out data.validation_fraction of data.path");
        Require(c.Training.MicroBatchSize > 0, "training.micro_batch_size", "must be positive");
        Require(c.Training.GradientAccumulationSteps > 0, "training.gradient_accumulation_steps", "must be positive");
        Require(c.Training.LearningRate > 0, "training.learning_rate", "must be positive");
        Require(c.Training.Epochs > 0 || c.Training.MaxSteps > 0, "training.epochs", "needs epochs > 0 or max_steps > 0");
        Require(c.Data.MaxSeqLen > 1, "data.max_seq_len", "must be at least 2");
        Require(c.Lora.Rank > 0, "lora.rank", "must be positive");
        Require(c.Loss.LambdaInstruction >= 0 && c.Loss.NextTokenWeight >= 0, "loss.lambda_instruction", "weights must be ≥ 0");
        Require(c.Loss.LambdaInstruction > 0 || c.Loss.NextTokenWeight > 0, "loss.lambda_instruction", "and loss.next_token_weight are both 0: nothing to learn");
        Require(c.Data.ValidationFraction is >= 0 and < 1, "data.validation_fraction", "must be in [0, 1)");
        Require(c.Meta.AdaptTasks.Count == 0 || c.Meta.Algorithm != MetaAlgorithm.Off, "meta.adapt_tasks",
            "compares a meta-learned start with the plain one: set meta.algorithm to reptile or fomaml");
        if (c.Training.Objective != TrainingObjective.Sft) PreferenceSetup.Validate(c);
        else PreferenceSetup.RefuseUnusedKeys(c);   // preference.* under sft would be accepted and ignored
        if (c.Model.InstructionAware.MarkerTokens.Count > 0)
        {
            const string mk = Models.InstructionAware.MarkerTokens.Key;
            var formats = new[] { c.Data.Format }.Concat(c.Data.Datasets.Select(d => string.IsNullOrEmpty(d.Format) ? c.Data.Format : d.Format));
            Require(!formats.Any(f => f.Equals("text", StringComparison.OrdinalIgnoreCase)), mk,
                "wraps the instruction segment, which data.format text does not have (every token is response text)");
            Require(c.Training.Method is TuningMethod.Full or TuningMethod.Lora or TuningMethod.Qlora, mk,
                $"resizes the embedding and lm_head, whose new rows must train: training.method full, lora or qlora (not {c.Training.Method.ToString().ToLowerInvariant()})");
            Require(c.Model.WeightStorage == WeightStorage.Float32, mk, "trains the new embedding/lm_head rows over float32 tables: model.weight_storage float32");
            Require(c.Training.Objective == TrainingObjective.Sft, mk, "wraps instructions of training.objective sft data (feedback objectives do not yet)");
        }
        if (InstructionAwareOptions(c).Any)
        {
            Require(c.Training.Method is not (TuningMethod.PromptTuning or TuningMethod.PrefixTuning), "model.instruction_aware",
                $"cannot be combined with training.method {(c.Training.Method == TuningMethod.PromptTuning ? "prompt_tuning" : "prefix_tuning")} (virtual tokens have no segment)");
            var formats = new[] { c.Data.Format }.Concat(c.Data.Datasets.Select(d => string.IsNullOrEmpty(d.Format) ? c.Data.Format : d.Format));
            Require(!formats.Any(f => f.Equals("text", StringComparison.OrdinalIgnoreCase)), "model.instruction_aware",
                "needs segment ids (instruction / input / response), which data.format text cannot provide (every token is response text)");
        }
        Require(c.Distributed.ZeroStage is 0 or 1, "distributed.zero_stage", "must be 0 (off) or 1 (optimizer state sharded)");
        Require(c.Distributed.BucketMb > 0, "distributed.bucket_mb", "must be positive");
        Require(c.Distributed.CollectiveTimeoutS > 0, "distributed.collective_timeout_s", "must be positive");
        Require(c.Distributed.ThreadsPerRank >= 0, "distributed.threads_per_rank", "must be ≥ 0 (0 = cores ÷ ranks on the node)");
        Require(c.Training.Method != TuningMethod.Ipeft || !c.Training.ActivationCheckpointing, "training.activation_checkpointing",
            "is not supported with ipeft (its gates enter every layer from outside the checkpoint)");
        Require(c.Training.Method != TuningMethod.Iapt || !c.Training.ActivationCheckpointing, "training.activation_checkpointing",
            "is not supported with iapt (its prompts enter every layer from outside the checkpoint)");
        Require(c.Training.Method != TuningMethod.Hint || !c.Training.ActivationCheckpointing, "training.activation_checkpointing",
            "is not supported with hint (its adapter gates and prompts enter every layer from outside the checkpoint)");
        Require(c.Training.Method != TuningMethod.Hint || !c.Data.Pack, "data.pack",
            "must be false for hint: each example's instruction leaves its row, and a packed row holds several examples");
        Require(c.Training.Method != TuningMethod.Iasft || c.Training.Objective == TrainingObjective.Sft, "training.method",
            "iasft estimates its Fisher from the response loss of training.objective sft; feedback objectives cannot use it yet");
        if (c.Training.Method is TuningMethod.PromptTuning or TuningMethod.PrefixTuning)
        {
            string key = c.Training.Method == TuningMethod.PromptTuning ? "prompt_tuning" : "prefix_tuning";
            int p = c.Training.Method == TuningMethod.PromptTuning ? c.PromptTuning.NumVirtualTokens : c.PrefixTuning.NumVirtualTokens;
            Require(p > 0, key + ".num_virtual_tokens", "must be positive");
            Require(!c.Data.Pack, "data.pack", $"must be false for {key}: its virtual tokens go in front of each sequence, and a packed row holds several");
            Require(!c.Training.ActivationCheckpointing || c.Training.Method == TuningMethod.PromptTuning, "training.activation_checkpointing", "is not supported with prefix_tuning");
        }
    }

    /// <summary>A deterministic split: every example goes to validation with probability f, by a seeded hash of its index.</summary>
    public static (List<TokenizedExample> Train, List<TokenizedExample> Validation) Split(IReadOnlyList<TokenizedExample> all, double f, int seed)
    {
        var train = new List<TokenizedExample>(); var validation = new List<TokenizedExample>();
        var rng = new Rng((ulong)seed * 7919 + 17);
        foreach (var e in all) (rng.NextDouble() < f && all.Count > 1 ? validation : train).Add(e);
        if (train.Count == 0) { train.AddRange(validation); validation.Clear(); }
        return (train, validation);
    }

    /// <summary>Runs the remaining steps; <paramref name="onStep"/> sees each result (progress displays).</summary>
    public TrainingSummary Train(Action<StepResult>? onStep = null, bool quiet = false, CancellationToken cancel = default)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var c = _config;
        var curve = new List<(int, double)>();
        var early = new EarlyStopping(c.Eval.EarlyStoppingPatience);
        double? validationLoss = null;
        bool stoppedEarly = false;
        StepResult? last = null;
        bool root = _comm.Rank == 0;
        if (root)
        {
            Directory.CreateDirectory(c.Checkpoint.OutputDir);
            AtomicFile.WriteAllText(Path.Combine(c.Checkpoint.OutputDir, "config.yaml"), ConfigLoader.ToYaml(c));   // the effective config of this run
        }
        using var reporter = root ? new TrainingReporter(c.Checkpoint.OutputDir, c.Logging.EverySteps, c.Logging.TensorBoard, quiet) : null;
        _continual?.Start(_trainer.Step);
        while (_trainer.Step < _totalSteps && !cancel.IsCancellationRequested)
        {
            last = _trainer.TrainStep();
            // The end of a stage: its Fisher, its forgetting row, and a checkpoint to resume the next stage from.
            bool stageEnded = (_continual?.AfterStep(last.Step) ?? 0) > 0;
            curve.Add((last.Step, last.Loss));
            Dictionary<string, double>? extra = null;
            if (c.Eval.EverySteps > 0 && (last.Step % c.Eval.EverySteps == 0 || last.Step == _totalSteps))
            {
                if (_preference != null)
                {
                    extra = _preference.Evaluate(_inputs.Model, c.Training.MicroBatchSize);
                    if (extra != null && extra.TryGetValue("eval_loss", out var pv))
                    {
                        validationLoss = pv;
                        if (early.Observe(pv)) stoppedEarly = true;
                    }
                }
                else
                {
                    // Rank 0 evaluates; the others receive its loss, so early stopping decides alike everywhere.
                    Span<double> v = [root ? ValidationLoss() : 0];
                    _comm.Broadcast(v, 0);
                    validationLoss = v[0];
                    extra = new() { ["eval_loss"] = validationLoss.Value };
                    if (early.Observe(validationLoss.Value)) stoppedEarly = true;
                    if (root && c.Eval.GenerationSamples > 0)
                        HeldOutGenerations.Write(c.Checkpoint.OutputDir, last.Step,
                            HeldOutGenerations.Generate(_inputs.Model, _inputs.Validation, c.Eval.GenerationSamples, _inputs.Decode!));
                }
            }
            bool logged = extra != null || last.Step == _totalSteps || last.Step % Math.Max(1, c.Logging.EverySteps) == 0;
            if (logged && _inputs.Model.InstructionAware is { Gates.Count: > 0 } gated)   // per-layer gate statistics (last micro-batch)
                foreach (var (layer, gate) in gated.Gates) (extra ??= [])[$"instruction_gate_mean/layer_{layer}"] = gate.LastMeanGate;
            reporter?.Log(last, _totalSteps, extra);
            onStep?.Invoke(last);
            if ((stageEnded || c.Checkpoint.SaveEverySteps > 0 && last.Step % c.Checkpoint.SaveEverySteps == 0) && last.Step != _totalSteps)
                SaveCheckpoint();
            if (stoppedEarly) break;
        }
        SaveCheckpoint();
        if (root && _meta is { Start: { } start, AdaptTasks.Count: > 0 } && _trainer.Step == _totalSteps) FastAdapt(_meta, start);
        var export = root ? Export() : "";
        Dispose();   // the run is over: release the folder's lock
        return new TrainingSummary(_trainer.Step, last?.Loss ?? double.NaN, validationLoss, curve, c.Checkpoint.OutputDir, export, stoppedEarly, clock.Elapsed.TotalSeconds);
    }

    /// <summary>meta.adapt_tasks: fine-tunes each held-out task from the meta-learned and the starting weights (meta.json, meta.html).</summary>
    private void FastAdapt(MetaRun meta, float[][] start)
    {
        var c = _config;
        var learned = MetaLearner.Snapshot(meta.Parameters);
        var results = meta.AdaptTasks.Select(a => FastAdaptation.Run(_inputs.Model, meta.Parameters, meta.Inner, learned, start, a.Name, a.Train, a.HeldOut,
            c.Meta, c.Training.MicroBatchSize, c.Data.MaxSeqLen, _inputs.PadId, c.Training.Seed)).ToList();
        FastAdaptation.Write(c.Checkpoint.OutputDir, c, _trainer.Step, results);
        foreach (var r in results)
            _say?.Invoke(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"fast adaptation on {r.Task}: held-out loss {r.Plain.Loss[0]:F3} (plain start) / {r.Meta.Loss[0]:F3} (meta start) → target {r.TargetLoss:F3}: " +
                $"{r.Meta.StepsToTarget?.ToString() ?? "not reached"} steps from the meta start, {r.Plain.StepsToTarget?.ToString() ?? "not reached"} from the plain start " +
                $"(ratio {(r.StepRatio is { } x ? x.ToString("F2") : "n/a")}) → {Path.Combine(c.Checkpoint.OutputDir, FastAdaptation.JsonFile)}"));
    }

    /// <summary>Releases the run folder's lock (also done at the end of <see cref="Train"/>).</summary>
    public void Dispose()
    {
        _folder?.Dispose();
        _folder = null;
    }

    /// <summary>Mean response-token loss over the validation set, without recording gradients (NaN without one).</summary>
    public double ValidationLoss()
    {
        if (_inputs.Validation.Count == 0) return double.NaN;
        var objective = _trainer.Options.Objective with { UncertaintyLogVars = null, TaskWeights = null };
        var sampler = new DataSampler(_inputs.Validation, new BatchOptions(BatchMode.Bucketed, _config.Training.MicroBatchSize, _config.Data.MaxSeqLen), _inputs.PadId, 0);
        double sum = 0; int tokens = 0;
        for (int i = 0; i < sampler.BatchesPerEpoch; i++)
        {
            var b = sampler.Next();
            var counts = InstructionObjective.Count([b], objective, _inputs.TaskNames.Count);
            if (counts.InstructionTokens == 0) continue;
            using var tape = Tape.Record(recordGrad: false);
            var r = InstructionObjective.Forward(_inputs.Model, b, counts, objective with { NextTokenWeight = 0, LambdaInstruction = 1, TaskHeadWeight = 0, RepresentationAlpha = 0 }, true);
            sum += r.InstructionSum; tokens += counts.InstructionTokens;
        }
        return tokens == 0 ? double.NaN : sum / tokens;
    }

    /// <summary>Collective in a data-parallel run (ZeRO-1 gathers the optimizer state on rank 0); rank 0 writes.</summary>
    public string SaveCheckpoint()
    {
        _trainer.Zero?.GatherStateOnRoot();
        if (_comm.Rank != 0) return "";
        var path = _store.Save(_trainer.Step, dir =>
        {
            TrainerCheckpoint.Write(_trainer, dir, ConfigLoader.ToYaml(_config));
            OnCheckpointWriting?.Invoke(dir);
        });
        _trainer.Zero?.DropForeignState();
        return path;
    }

    /// <summary>Writes what users take away: run_dir/final (HF model) for full fine-tuning, run_dir/adapter (PEFT) otherwise.</summary>
    public string Export()
    {
        if (_peft != null)
        {
            var dir = Path.Combine(_config.Checkpoint.OutputDir, "adapter");
            _peft.Save(_inputs.Model, dir, _inputs.ModelPath);
            if (_inputs.Prompt != null) PromptFormatFile.Write(dir, _inputs.Prompt);
            Models.InstructionAware.InstructionAwareFile.Save(_inputs.Model, dir);
            _inputs.Model.TokenRows?.Save(dir);   // added_tokens.safetensors: the marker rows
            _inputs.Markers?.Save(dir);           // the tokenizer with the markers
            Models.InstructionAware.InstructionAwareFile.Record(_inputs.Model, dir);
            _preference?.Reward?.Head.Save(dir);
            return dir;
        }
        var final = Path.Combine(_config.Checkpoint.OutputDir, "final");
        LlamaCheckpoint.Save(_inputs.Model, final);
        if (!string.IsNullOrEmpty(_inputs.ModelPath))
            foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "generation_config.json" })
                if (File.Exists(Path.Combine(_inputs.ModelPath, f))) File.Copy(Path.Combine(_inputs.ModelPath, f), Path.Combine(final, f), overwrite: true);
        _inputs.Markers?.Save(final);   // the tokenizer with the marker tokens (replaces the copies)
        if (_inputs.Prompt != null) PromptFormatFile.Write(final, _inputs.Prompt);
        Models.InstructionAware.InstructionAwareFile.Record(_inputs.Model, final);   // its tensors: LlamaCheckpoint.Save
        _preference?.Reward?.Head.Save(final);
        return final;
    }
}
