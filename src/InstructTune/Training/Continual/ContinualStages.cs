using InstructTune.Checkpoints;
using InstructTune.Data.Records;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Peft.Progressive;
using InstructTune.Training.Config;
using InstructTune.Training.Loop;
using InstructTune.Training.Losses;
using InstructTune.Training.Regularizers;

namespace InstructTune.Training.Continual;

/// <summary>The data of each stage that the continual side needs: its training mixture, its held-out set, its name.</summary>
public sealed record StageData(string Name, IReadOnlyList<TokenizedExample> Train, IReadOnlyList<TokenizedExample> HeldOut);

/// <summary>
/// What happens between the stages of a staged run (data.stages), on one model/adapter: at the end of stage k (its last
/// optimizer step) — EWC's Fisher of stage k's data at the final weights, written with the anchor weights to
/// run_dir/stages/stage-k/fisher.safetensors and penalised in every later stage (loss.ewc_lambda, continual.ewc_gamma);
/// its examples joining GEM / A-GEM's episodic memory (continual.gem);
/// the forgetting row (every stage's held-out set scored, run_dir/stages/stage-k/eval.json, then forgetting.json/html);
/// then a checkpoint. A resumed run reloads what the finished stages wrote (the Fisher and anchors exactly as saved), so
/// it continues bit for bit. Row 0 (the starting model) is scored before step 1.
/// </summary>
public sealed class ContinualStages
{
    public const string StagesDir = "stages";
    private readonly TrainConfig _config;
    private readonly LlamaModel _model;
    private readonly Trainer _trainer;
    private readonly IReadOnlyList<StageData> _stages;
    private readonly IReadOnlyList<(string Name, Parameter Parameter)> _protected;
    private readonly long[] _ends;
    private readonly int _padId;
    private readonly string _runDir;
    private readonly List<ForgettingReport.Row> _rows = [];
    private EwcRegularizer? _online;
    private readonly EpisodicMemory? _memory;
    private readonly Action<string>? _say;
    /// <summary>training.method progressive: the column layers (column k trains in stage k; stage j is scored with column j).</summary>
    private readonly bool _progressive;
    private readonly string _baseModelPath;

    /// <summary>Whether the forgetting matrix is written (continual.forgetting_report and every stage has held-out examples).</summary>
    public bool Reporting { get; }

    /// <param name="stageSteps">Optimizer steps of each stage; the last stage ends at the run's last step.</param>
    /// <param name="protectedParameters">The parameters EWC protects (the trainable ones, without loss weights).</param>
    public ContinualStages(TrainConfig config, LlamaModel model, Trainer trainer, IReadOnlyList<StageData> stages, IReadOnlyList<long> stageSteps,
        int totalSteps, IReadOnlyList<(string Name, Parameter Parameter)> protectedParameters, int padId, Action<string>? say,
        bool report = true, string baseModelPath = "")
    {
        _baseModelPath = baseModelPath;
        _progressive = ProgressiveInjector.Find(model).Count > 0;
        if (_progressive) ProgressiveInjector.Select(model, 0, train: true);   // stage 1 trains column 1 alone
        _config = config; _model = model; _trainer = trainer; _stages = stages; _protected = protectedParameters; _padId = padId; _say = say;
        _runDir = config.Checkpoint.OutputDir;
        _ends = new long[stages.Count];
        long end = 0;
        for (int k = 0; k < stages.Count; k++) { end += stageSteps[k]; _ends[k] = Math.Min(end, totalSteps); }
        _ends[^1] = totalSteps;
        var empty = stages.Select((s, k) => (s, k)).Where(x => x.s.HeldOut.Count(e => e.LearnedTokens > 0) == 0).Select(x => x.k + 1).ToList();
        if (config.Continual.Gem != GemMode.Off)
        {
            _memory = new EpisodicMemory(model, config.Continual.Gem, config.Continual.MemoryBatch, padId, config.Data.MaxSeqLen,
                trainer.Options.Objective, trainer.Options.TaskCount, config.Training.Seed);
            trainer.Projection = _memory;
        }
        Reporting = report && config.Continual.ForgettingReport && stages.Count > 1 && empty.Count == 0;
        if (report && config.Continual.ForgettingReport && stages.Count > 1 && empty.Count > 0)
            say?.Invoke($"warning: no forgetting report: stage(s) {string.Join(", ", empty)} have no held-out examples " +
                "(the held-out set of a stage is the validation split of its datasets: set data.validation_fraction > 0)");
    }

    public static string StageDir(string runDir, int stage) => Path.Combine(runDir, StagesDir, $"stage-{stage}");

    /// <summary>The 1-based stage whose last step is <paramref name="step"/>, or 0.</summary>
    public int StageEndingAt(int step)
    {
        for (int k = 0; k < _ends.Length; k++) if (_ends[k] == step && (k == 0 || _ends[k - 1] < step)) return k + 1;
        return 0;
    }

    /// <summary>Before the first step of a fresh run: score the starting model (row 0). On resume: reload finished stages.</summary>
    public void Start(int step)
    {
        if (step == 0)
        {
            if (Reporting) Score(0, 0);
            return;
        }
        for (int k = 0; k < _ends.Length; k++)
        {
            if (_ends[k] > step) break;
            int stage = k + 1;
            if (Reporting)
            {
                if (_rows.Count == 0) _rows.Add(ReadRow(0));
                _rows.Add(ReadRow(stage));
            }
            if (_memory != null && stage < _stages.Count) _memory.AddTask(_stages[k].Train, _config.Continual.MemoryPerStage, stage);
            if (_progressive && stage < _stages.Count) ProgressiveInjector.Select(_model, stage, train: true);
            if (EwcOn && stage < _stages.Count)
            {
                var (fisher, anchor) = StageFisher.Read(Path.Combine(StageDir(_runDir, stage), StageFisher.FileName), _protected, "loss.ewc_lambda");
                AddPenalty(fisher, anchor);
            }
            if (L2On && stage < _stages.Count) AnchorL2(stage, write: false);
        }
        if (Reporting && _rows.Count == 0) _rows.Add(ReadRow(0));
    }

    private bool EwcOn => _config.Loss.EwcLambda > 0;
    private bool L2On => _config.Continual.L2PreviousLambda > 0;
    private L2SpRegularizer? _l2;

    /// <summary>The previous stage's final weights, the anchor of continual.l2_previous_lambda.</summary>
    public const string L2AnchorFile = "l2_anchor.safetensors";

    /// <summary>Anchors the L2 penalty at stage <paramref name="stage"/>'s final weights, as written in its folder (so a
    /// resumed run, which reads the file, anchors at exactly the same values); replaces the previous stage's anchor.</summary>
    private void AnchorL2(int stage, bool write)
    {
        var path = Path.Combine(StageDir(_runDir, stage), L2AnchorFile);
        var parameters = _protected.Select(p => p.Parameter).ToList();
        if (write)
            SafetensorsWriter.Write(path, _protected.Select(p => TensorToWrite.FromF32("anchor." + p.Name, DType.F32,
                p.Parameter.Shape.Select(d => (long)d).ToArray(), p.Parameter.ToArray())).ToList(), new Dictionary<string, string> { ["stage"] = stage.ToString() });
        const string key = "continual.l2_previous_lambda";
        if (!File.Exists(path)) throw new ConfigException($"{key}: '{path}' does not exist (written at the end of stage {stage}; resume from a checkpoint of this run)", key);
        var anchor = new float[parameters.Count][];
        using (var file = SafetensorsFile.Open(path))
            for (int i = 0; i < parameters.Count; i++)
            {
                string name = "anchor." + _protected[i].Name;
                if (!file.Contains(name)) throw new ConfigException($"{key}: '{path}' has no anchor for parameter '{_protected[i].Name}' (another model or training.method?)", key);
                anchor[i] = file.ReadF32(name);
                if (anchor[i].Length != parameters[i].Length) throw new ConfigException($"{key}: '{path}' holds {anchor[i].Length} values for '{_protected[i].Name}', this model has {parameters[i].Length}", key);
            }
        if (_l2 != null) _trainer.Regularizers.Remove(_l2);
        _l2 = new L2SpRegularizer(parameters, _config.Continual.L2PreviousLambda, anchor);
        _trainer.Regularizers.Add(_l2);
        _say?.Invoke($"stage {stage}: L2 anchor at the stage's final weights → {path}");
    }

    /// <summary>After optimizer step <paramref name="step"/>: when a stage ended there, do its end-of-stage work; returns the stage or 0.</summary>
    public int AfterStep(int step)
    {
        int stage = StageEndingAt(step);
        if (stage == 0) return 0;
        var rngs = _trainer.Rngs.ToDictionary(r => r.Key, r => r.Value.State);   // neither Fisher nor scoring may move the run's noise
        Directory.CreateDirectory(StageDir(_runDir, stage));
        if (EwcOn && stage < _stages.Count)
        {
            var parameters = _protected.Select(p => p.Parameter).ToList();
            var (fisher, n) = StageFisher.OfExamples(_model, parameters, _stages[stage - 1].Train, _config.Continual.FisherSamples, _padId,
                _config.Data.MaxSeqLen, _trainer.Options.Objective, _trainer.Options.TaskCount);
            var path = Path.Combine(StageDir(_runDir, stage), StageFisher.FileName);
            StageFisher.Write(path, _protected, fisher, n, stage);
            // The penalty uses the values as written, so a resumed run (which reads the file) sees exactly the same.
            var (saved, anchor) = StageFisher.Read(path, _protected, "loss.ewc_lambda");
            AddPenalty(saved, anchor);
            _say?.Invoke($"stage {stage}: EWC Fisher of {n} examples → {path}");
        }
        if (L2On && stage < _stages.Count) AnchorL2(stage, write: true);
        if (_memory != null && stage < _stages.Count) _memory.AddTask(_stages[stage - 1].Train, _config.Continual.MemoryPerStage, stage);
        if (Reporting) Score(stage, step);
        if (_progressive)
        {
            // Column `stage` is finished: export it (a plain LoRA adapter), freeze it, and train the next one.
            var dir = Path.Combine(StageDir(_runDir, stage), "adapter");
            ProgressiveAdapterIO.Save(_model, ProgressiveConfig(_config), dir, _baseModelPath);
            _say?.Invoke($"stage {stage}: progressive column {stage} frozen → {dir}");
            if (stage < _stages.Count) ProgressiveInjector.Select(_model, stage, train: true);
        }
        foreach (var (name, state) in rngs) _trainer.Rngs[name].State = state;
        return stage;
    }

    /// <summary>Adds stage k's penalty: its own term (γ = 1), or folds it into the online term F ← γ·F + F_k around θ*_k.</summary>
    private void AddPenalty(float[][] fisher, float[][] anchor)
    {
        var parameters = _protected.Select(p => p.Parameter).ToList();
        double gamma = _config.Continual.EwcGamma;
        if (gamma >= 1)
        {
            _trainer.Regularizers.Add(new EwcRegularizer(parameters, fisher, _config.Loss.EwcLambda, anchor));
            return;
        }
        if (_online != null)
        {
            for (int i = 0; i < fisher.Length; i++)
                for (int j = 0; j < fisher[i].Length; j++) fisher[i][j] += (float)gamma * _online.Fisher[i][j];
            _trainer.Regularizers.Remove(_online);
        }
        _online = new EwcRegularizer(parameters, fisher, _config.Loss.EwcLambda, anchor);
        _trainer.Regularizers.Add(_online);
    }

    /// <summary>The LoRA settings of the progressive columns (what PeftRegistry injected).</summary>
    private static Peft.Lora.LoraConfig ProgressiveConfig(TrainConfig c) =>
        new() { Rank = c.Lora.Rank, Alpha = c.Lora.Alpha, TargetModules = c.Lora.TargetModules };

    private void Score(int stage, int step)
    {
        int trainingColumn = _progressive ? ProgressiveInjector.Find(_model)[0].Layer.Active : 0;
        var scores = _stages.Select((s, j) =>
        {
            // Progressive columns: stage j's held-out set is scored with its own column once trained, else the newest.
            if (_progressive) ProgressiveInjector.Show(_model, stage == 0 ? 0 : Math.Min(j, stage - 1));
            return HeldOutEvaluator.Score(_model, s.HeldOut, _config.Training.MicroBatchSize, _config.Data.MaxSeqLen, _padId);
        }).ToList();
        if (_progressive) ProgressiveInjector.Show(_model, trainingColumn);
        var row = new ForgettingReport.Row(stage, step, scores);
        var dir = StageDir(_runDir, stage);
        Directory.CreateDirectory(dir);
        Checkpoints.AtomicFile.WriteAllText(Path.Combine(dir, "eval.json"), ForgettingReport.Serialize(row));
        _rows.RemoveAll(r => r.Stage >= stage);
        _rows.Add(row);
        ForgettingReport.Write(_runDir, _stages.Select(s => s.Name).ToList(), _rows, Strategy(_config));
        _say?.Invoke($"{(stage == 0 ? "start" : $"after stage {stage}")}: token accuracy " +
            string.Join(" ", scores.Select((s, j) => $"[{j + 1}] {s.TokenAccuracy:F3}")));
    }

    private ForgettingReport.Row ReadRow(int stage)
    {
        var path = Path.Combine(StageDir(_runDir, stage), "eval.json");
        if (!File.Exists(path)) throw new InvalidDataException($"{path} is missing: the run folder lost the forgetting row of stage {stage}; start the run again");
        return ForgettingReport.Deserialize(File.ReadAllText(path)) ?? throw new InvalidDataException($"{path}: damaged forgetting row");
    }

    /// <summary>A short name of what protects earlier stages in this run, for the report's title.</summary>
    public static string Strategy(TrainConfig c)
    {
        var parts = new List<string>();
        if (c.Data.Stages.Any(s => s.Replay > 0)) parts.Add("replay");
        if (c.Loss.EwcLambda > 0) parts.Add(c.Continual.EwcGamma < 1 ? "online ewc" : "ewc");
        if (c.Continual.Gem != GemMode.Off) parts.Add(c.Continual.Gem == GemMode.Agem ? "a-gem" : "gem");
        if (c.Loss.L2SpLambda > 0) parts.Add("l2-sp");
        if (c.Continual.L2PreviousLambda > 0) parts.Add("l2 to previous stage");
        if (c.Training.Method == TuningMethod.Progressive) parts.Add("progressive");
        return parts.Count == 0 ? "sequential" : string.Join(" + ", parts);
    }
}
