using InstructTune.Data.Batching;
using InstructTune.Data.Loading;
using InstructTune.Data.Pipeline;
using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Peft.Lora;
using InstructTune.Tokenizers;
using InstructTune.Training.Checkpointing;
using InstructTune.Training.Config;
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
    IReadOnlyList<IReadOnlyList<TokenizedExample>>? Stages = null, IReadOnlyList<int>? StageEpochs = null, PromptFormatRecord? Prompt = null);

/// <summary>What a finished run reports.</summary>
public sealed record TrainingSummary(int Steps, double FinalLoss, double? ValidationLoss, IReadOnlyList<(int Step, double Loss)> LossCurve,
    string RunDir, string ExportDir, bool StoppedEarly, double Seconds);

/// <summary>
/// Full fine-tuning, LoRA and QLoRA as one readable recipe: setup (model, data, adapters, optimizer, schedule,
/// resume) → train (steps, logging, validation, checkpoints, early stopping) → save (the model in HF layout, or
/// the adapter in PEFT layout, under run_dir/final). Everything that can be wrong with the config or inputs is
/// checked in setup, before the first step.
/// </summary>
public sealed class FineTuneRecipe
{
    private readonly TrainConfig _config;
    private readonly TrainingInputs _inputs;
    private readonly Trainer _trainer;
    private readonly LoraConfig? _lora;
    private readonly CheckpointStore _store;
    private readonly int _totalSteps;

    public Trainer Trainer => _trainer;
    public int TotalSteps => _totalSteps;
    /// <summary>Optimizer steps of each curriculum stage (null with one stage).</summary>
    public IReadOnlyList<long>? StageSteps { get; private set; }
    /// <summary>The data of a run set up from disk (stats per dataset and stage); null for in-memory inputs.</summary>
    public PreparedData? Data { get; private set; }
    public string RunDir => _config.Checkpoint.OutputDir;

    /// <summary>Hook for tests: called inside every checkpoint write, before the files are published.</summary>
    public static Action<string>? OnCheckpointWriting { get; set; }

    private FineTuneRecipe(TrainConfig config, TrainingInputs inputs, string? resume)
    {
        _config = config;
        _inputs = inputs;
        var t = config.Training;
        var model = inputs.Model;
        if (inputs.Train.Count == 0) throw new ConfigException("data.path: the dataset has no usable examples");

        if (t.Method != TuningMethod.Full)
        {
            _lora = new LoraConfig
            {
                Rank = config.Lora.Rank, Alpha = config.Lora.Alpha, Dropout = config.Lora.Dropout,
                TargetModules = config.Lora.TargetModules, UseRsLora = config.Lora.UseRslora,
            };
            try { LoraInjector.Inject(model, _lora, (ulong)t.Seed, quantizeBase: t.Method == TuningMethod.Qlora); }
            catch (ArgumentException e) { throw new ConfigException($"lora.target_modules: {e.Message}"); }
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
            (float)t.NeftuneAlpha, t.NeftuneAlpha > 0 ? new Rng((ulong)t.Seed ^ 0x4E45465455UL) : null);

        var batchOptions = new BatchOptions(config.Data.Pack ? BatchMode.Packed : BatchMode.Bucketed, t.MicroBatchSize, config.Data.MaxSeqLen);
        IBatchSource batches;
        if (inputs.Stages is not { Count: > 1 })
        {
            var sampler = new DataSampler(inputs.Stages is { Count: 1 } one ? one[0] : inputs.Train, batchOptions, inputs.PadId, t.Seed);
            int epochs = inputs.StageEpochs is { Count: 1 } e ? e[0] : t.Epochs;
            int stageSteps = config.Data.Stages.Count > 0 && config.Data.Stages[0].MaxSteps > 0 ? config.Data.Stages[0].MaxSteps
                : epochs * Math.Max(1, sampler.BatchesPerEpoch / t.GradientAccumulationSteps);
            _totalSteps = t.MaxSteps > 0 ? t.MaxSteps : stageSteps;
            batches = new SamplerBatchSource(sampler);
        }
        else
        {
            // Stage k serves its steps (data.stages[k].max_steps, else its epochs' worth), then stage k+1 starts.
            var samplers = inputs.Stages.Select((st, k) => new DataSampler(st, batchOptions, inputs.PadId, t.Seed + 1000 * k)).ToList();
            var steps = samplers.Select((sm, k) => k < config.Data.Stages.Count && config.Data.Stages[k].MaxSteps > 0 ? (long)config.Data.Stages[k].MaxSteps
                : (long)(inputs.StageEpochs?[k] ?? 1) * Math.Max(1, sm.BatchesPerEpoch / t.GradientAccumulationSteps)).ToList();
            StageSteps = steps;
            _totalSteps = t.MaxSteps > 0 ? t.MaxSteps : (int)steps.Sum();
            batches = new StagedBatchSource(samplers, steps.Select(x => x * t.GradientAccumulationSteps).ToList(), t.Seed);
        }

        var optimizer = new AdamW(ParamGroup.DecayMatricesOnly(trainable.Select(p => p.Parameter), (float)t.WeightDecay),
            (float)t.LearningRate, (float)t.AdamBeta1, (float)t.AdamBeta2, (float)t.AdamEpsilon);
        var schedule = new Engine.Optim.LrSchedule(t.LrScheduler switch
        {
            Training.Config.LrSchedule.Constant => LrScheduleKind.Constant,
            Training.Config.LrSchedule.Linear => LrScheduleKind.Linear,
            _ => LrScheduleKind.Cosine,
        }, (float)t.LearningRate, t.WarmupSteps, _totalSteps);
        _trainer = new Trainer(model, trainable, optimizer, batches,
            new TrainerOptions(t.GradientAccumulationSteps, (float)t.MaxGradNorm, schedule, objective, inputs.TaskNames.Count,
                t.ActivationCheckpointing, t.SpikeFactor, t.MaxBadSteps));
        if (objective.NoiseRng != null) _trainer.Rngs["neftune"] = objective.NoiseRng;
        foreach (var (_, layer) in LoraInjector.Find(model)) { if (layer.DropoutRng != null) _trainer.Rngs["lora_dropout"] = layer.DropoutRng; break; }

        var frozenOrAll = trainable.Select(p => p.Parameter).Where(p => p != logVars).ToList();
        if (config.Loss.L2SpLambda > 0) _trainer.Regularizers.Add(new L2SpRegularizer(frozenOrAll, config.Loss.L2SpLambda));
        if (config.Loss.EwcLambda > 0) _trainer.Regularizers.Add(MakeEwc(frozenOrAll, objective));

        _store = new CheckpointStore(config.Checkpoint.OutputDir, Math.Max(1, config.Checkpoint.KeepLast));
        if (resume != null)
            TrainerCheckpoint.Restore(_trainer, CheckpointStore.Resolve(resume, config.Checkpoint.OutputDir));
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
    public static FineTuneRecipe Setup(TrainConfig config, string? resume = null, Action<string>? say = null)
    {
        var modelPath = config.Model.Path;
        if (string.IsNullOrEmpty(modelPath)) throw new ConfigException("model.path is required (a Hugging Face checkpoint folder)");
        if (!File.Exists(Path.Combine(modelPath, "config.json"))) throw new ConfigException($"model.path: no config.json in '{modelPath}'");
        Validate(config);
        if (config.Data.Datasets.Count > 0 || !Directory.Exists(config.Data.Path) || !File.Exists(Path.Combine(config.Data.Path, PrepareRecipe.PreparedFile)))
            PrepareRecipe.Resolve(config.Data);   // bad data keys are refused before the model loads
        var tokenizerPath = string.IsNullOrEmpty(config.Model.Tokenizer) ? modelPath : config.Model.Tokenizer;
        say?.Invoke($"tokenizer: {tokenizerPath}");
        var tokenizer = TokenizerLoader.Load(tokenizerPath);
        say?.Invoke($"model: {modelPath}");
        var model = LlamaCheckpoint.Load(modelPath);
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new ConfigException($"model.tokenizer: the tokenizer has {tokenizer.VocabSize} tokens but the model's vocabulary is {model.Config.VocabSize}");
        var data = PrepareRecipe.Run(config, tokenizer, tokenizerPath, Path.Combine(config.Checkpoint.OutputDir, "data"), say: say);
        foreach (var line in DataReport.Lines(data)) say?.Invoke(line);
        int padId = tokenizer.PadId ?? tokenizer.EosId ?? 0;
        var inputs = new TrainingInputs(model, data.Stages.SelectMany(x => x).ToList(), data.Validation, padId, data.TaskNames, modelPath,
            data.Stages, data.StageEpochs, data.Prompt.ToRecord(tokenizer));
        PromptFormatFile.Write(config.Checkpoint.OutputDir, inputs.Prompt!);
        return new FineTuneRecipe(config, inputs, resume) { Data = data };
    }

    public static FineTuneRecipe FromInputs(TrainConfig config, TrainingInputs inputs, string? resume = null)
    {
        Validate(config);
        return new FineTuneRecipe(config, inputs, resume);
    }

    private static void Validate(TrainConfig c)
    {
        void Require(bool ok, string key, string why) { if (!ok) throw new ConfigException($"{key}: {why}"); }
        Require(c.Training.MicroBatchSize > 0, "training.micro_batch_size", "must be positive");
        Require(c.Training.GradientAccumulationSteps > 0, "training.gradient_accumulation_steps", "must be positive");
        Require(c.Training.LearningRate > 0, "training.learning_rate", "must be positive");
        Require(c.Training.Epochs > 0 || c.Training.MaxSteps > 0, "training.epochs", "needs epochs > 0 or max_steps > 0");
        Require(c.Data.MaxSeqLen > 1, "data.max_seq_len", "must be at least 2");
        Require(c.Lora.Rank > 0, "lora.rank", "must be positive");
        Require(c.Loss.LambdaInstruction >= 0 && c.Loss.NextTokenWeight >= 0, "loss.lambda_instruction", "weights must be ≥ 0");
        Require(c.Loss.LambdaInstruction > 0 || c.Loss.NextTokenWeight > 0, "loss.lambda_instruction", "and loss.next_token_weight are both 0: nothing to learn");
        Require(c.Data.ValidationFraction is >= 0 and < 1, "data.validation_fraction", "must be in [0, 1)");
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
        using var reporter = new TrainingReporter(c.Checkpoint.OutputDir, c.Logging.EverySteps, c.Logging.TensorBoard, quiet);
        while (_trainer.Step < _totalSteps && !cancel.IsCancellationRequested)
        {
            last = _trainer.TrainStep();
            curve.Add((last.Step, last.Loss));
            Dictionary<string, double>? extra = null;
            if (c.Eval.EverySteps > 0 && _inputs.Validation.Count > 0 && (last.Step % c.Eval.EverySteps == 0 || last.Step == _totalSteps))
            {
                validationLoss = ValidationLoss();
                extra = new() { ["eval_loss"] = validationLoss.Value };
                if (early.Observe(validationLoss.Value)) stoppedEarly = true;
            }
            reporter.Log(last, _totalSteps, extra);
            onStep?.Invoke(last);
            if (c.Checkpoint.SaveEverySteps > 0 && last.Step % c.Checkpoint.SaveEverySteps == 0 && last.Step != _totalSteps)
                SaveCheckpoint();
            if (stoppedEarly) break;
        }
        SaveCheckpoint();
        var export = Export();
        return new TrainingSummary(_trainer.Step, last?.Loss ?? double.NaN, validationLoss, curve, c.Checkpoint.OutputDir, export, stoppedEarly, clock.Elapsed.TotalSeconds);
    }

    /// <summary>Mean response-token loss over the validation set, without recording gradients.</summary>
    public double ValidationLoss()
    {
        var objective = _trainer.Options.Objective with { UncertaintyLogVars = null, TaskWeights = null };
        var sampler = new DataSampler(_inputs.Validation, new BatchOptions(BatchMode.Bucketed, _config.Training.MicroBatchSize, _config.Data.MaxSeqLen), _inputs.PadId, 0);
        double sum = 0; int tokens = 0;
        for (int i = 0; i < sampler.BatchesPerEpoch; i++)
        {
            var b = sampler.Next();
            var counts = InstructionObjective.Count([b], objective, _inputs.TaskNames.Count);
            if (counts.InstructionTokens == 0) continue;
            using var tape = Tape.Record(recordGrad: false);
            var r = InstructionObjective.Forward(_inputs.Model, b, counts, objective with { NextTokenWeight = 0, LambdaInstruction = 1 }, true);
            sum += r.InstructionSum; tokens += counts.InstructionTokens;
        }
        return tokens == 0 ? double.NaN : sum / tokens;
    }

    public string SaveCheckpoint() => _store.Save(_trainer.Step, dir =>
    {
        TrainerCheckpoint.Write(_trainer, dir, ConfigLoader.ToYaml(_config));
        OnCheckpointWriting?.Invoke(dir);
    });

    /// <summary>Writes what users take away: run_dir/final (HF model) for full fine-tuning, run_dir/adapter (PEFT) otherwise.</summary>
    public string Export()
    {
        if (_lora != null)
        {
            var dir = Path.Combine(_config.Checkpoint.OutputDir, "adapter");
            LoraAdapterIO.Save(_inputs.Model, _lora, dir, _inputs.ModelPath);
            if (_inputs.Prompt != null) PromptFormatFile.Write(dir, _inputs.Prompt);
            return dir;
        }
        var final = Path.Combine(_config.Checkpoint.OutputDir, "final");
        LlamaCheckpoint.Save(_inputs.Model, final);
        if (!string.IsNullOrEmpty(_inputs.ModelPath))
            foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "generation_config.json" })
                if (File.Exists(Path.Combine(_inputs.ModelPath, f))) File.Copy(Path.Combine(_inputs.ModelPath, f), Path.Combine(final, f), overwrite: true);
        if (_inputs.Prompt != null) PromptFormatFile.Write(final, _inputs.Prompt);
        return final;
    }
}
