using System.Diagnostics;
using InstructTune.Data.Batching;
using InstructTune.Distributed;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Training.Losses;
using InstructTune.Training.Regularizers;

namespace InstructTune.Training.Loop;

/// <summary>What one optimizer step did.</summary>
public sealed record StepResult(int Step, double Loss, double InstructionLoss, double NextTokenLoss, double GradNorm,
    double LearningRate, int Tokens, StepVerdict Verdict, string? SkipReason, double Seconds,
    IReadOnlyDictionary<string, double>? Metrics = null);

/// <summary>
/// A training objective other than the instruction loss (feedback tuning: Training/Preference): it runs
/// forward and backward over the micro-batches of one step, normalised over the whole step, and reports the
/// step's loss, its tokens and the metrics to log.
/// </summary>
public interface IStepObjective
{
    StepOutcome ForwardBackward(LlamaModel model, IReadOnlyList<Batch> microBatches, bool checkpointLayers);
}

public sealed record StepOutcome(double Loss, int Tokens, IReadOnlyDictionary<string, double> Metrics);

/// <summary>
/// Rewrites the step's accumulated gradient before regularizers, clipping and the optimizer (GEM / A-GEM:
/// Training/Continual/EpisodicMemory.cs). <paramref name="step"/> is the 0-based step being taken.
/// </summary>
public interface IGradientProjection
{
    void Project(IReadOnlyList<Parameter> parameters, int step);
}

public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>Settings of the loop that the trainer needs step by step.</summary>
public sealed record TrainerOptions(
    int GradientAccumulationSteps,
    float MaxGradNorm,
    LrSchedule Schedule,
    ObjectiveOptions Objective,
    int TaskCount,
    bool CheckpointLayers = false,
    double SpikeFactor = 0,
    int MaxBadSteps = 5,
    bool Bf16 = false)
{
    /// <summary>When set, the learning rate of each step instead of <see cref="Schedule"/> (per-stage rates: Training/Continual/StageSchedule.cs).</summary>
    public Func<int, float>? LearningRateAt { get; init; }
}

/// <summary>
/// One optimizer step at a time: draw the micro-batches of the step, count their tokens, forward/backward each
/// (dividing by the step's counts), add regularizer gradients, clip the global norm, let the guard judge, then
/// AdamW at the scheduled learning rate. A skipped step still consumes its data and advances the step counter,
/// so a run's schedule and data order do not depend on which steps were skipped.
/// Data parallel (<see cref="Distribute"/>): a step's global batch is GradientAccumulationSteps × ranks
/// micro-batches drawn from the same seeded sampler on every rank; rank r computes micro-batches
/// r·GA … r·GA+GA−1 of them and skips the rest. Token counts and gradients are summed over the ranks, so every
/// rank clips, judges and steps on the gradient a one-process run with GA × ranks would have computed.
/// </summary>
public sealed class Trainer
{
    public LlamaModel Model { get; }
    public IReadOnlyList<(string Name, Parameter Parameter)> Trainable { get; }
    public AdamW Optimizer { get; }
    public IBatchSource Sampler { get; }
    public TrainerOptions Options { get; }
    public StepGuard Guard { get; }
    public List<IRegularizer> Regularizers { get; } = [];
    /// <summary>Projects the data gradient before the regularizers add theirs (null: none).</summary>
    public IGradientProjection? Projection { get; set; }
    /// <summary>Random generators whose state a checkpoint must keep (dropout, NEFTune), by name.</summary>
    public Dictionary<string, Rng> Rngs { get; } = [];
    public int Step { get; set; }
    public ICommunicator Comm { get; private set; } = SingleProcess.Instance;
    /// <summary>ZeRO-1 sharding of the optimizer state, when distributed.zero_stage is 1.</summary>
    public ZeroOneOptimizer? Zero { get; private set; }
    /// <summary>Time spent summing gradients over the ranks, in total.</summary>
    public double AllreduceSeconds => _reducer?.Seconds ?? 0;
    /// <summary>Micro-batches of one optimizer step over all ranks (what a checkpoint records).</summary>
    public int GlobalMicroBatches => Options.GradientAccumulationSteps * Comm.Size;
    private GradientReducer? _reducer;
    /// <summary>When set, replaces the instruction loss of <see cref="TrainerOptions.Objective"/> (feedback objectives).</summary>
    public IStepObjective? StepObjective { get; init; }

    public Trainer(LlamaModel model, IReadOnlyList<(string Name, Parameter Parameter)> trainable, AdamW optimizer,
        IBatchSource sampler, TrainerOptions options)
    {
        if (trainable.Count == 0) throw new ArgumentException("nothing to train: every parameter is frozen");
        Model = model; Trainable = trainable; Optimizer = optimizer; Sampler = sampler; Options = options;
        Guard = new StepGuard(options.SpikeFactor, options.MaxBadSteps);
    }

    /// <summary>Trains data-parallel over <paramref name="comm"/>'s ranks (every rank calls this, same arguments).</summary>
    public void Distribute(ICommunicator comm, int zeroStage, double bucketMiB)
    {
        // Feedback objectives normalise over their own step's pairs; they are not split over ranks yet.
        if (StepObjective != null && comm.Size > 1)
            throw new Config.ConfigException("training.objective: feedback objectives run in one process only (not under mpirun with several ranks yet)");
        Comm = comm;
        var parameters = Trainable.Select(t => t.Parameter).ToList();
        _reducer = new GradientReducer(comm, parameters, (int)Math.Clamp(bucketMiB * 262144, 1024, int.MaxValue / 2));
        if (zeroStage == 1) Zero = new ZeroOneOptimizer(Optimizer, parameters, comm);
    }

    public StepResult TrainStep()
    {
        var clock = Stopwatch.StartNew();
        // training.precision: bf16 — forward and backward GEMMs on bf16 operands (Autocast); the optimizer step
        // below sees float32 gradients and updates float32 master weights either way.
        using var precision = Autocast.Enter(Options.Bf16);
        int GA = Options.GradientAccumulationSteps;
        var micro = new List<Batch>(GA);
        for (int g = 0; g < GA * Comm.Size; g++)
            if (g / GA == Comm.Rank) micro.Add(Sampler.Next()); else Sampler.Skip();
        if (StepObjective != null) return Finish(StepObjective.ForwardBackward(Model, micro, Options.CheckpointLayers), clock);
        var counts = SumOverRanks(InstructionObjective.Count(micro, Options.Objective, Options.TaskCount));

        double loss = 0, instrSum = 0, lmSum = 0, taskSum = 0, reprSum = 0, tempSum = 0;
        int tokens = 0;
        var rngBase = Rngs.Values.Select(r => r.State).ToArray();
        for (int i = 0; i < micro.Count; i++)
        {
            SeedRngs(rngBase, Comm.Rank * GA + i);
            using var tape = Tape.Record();
            var r = InstructionObjective.Forward(Model, micro[i], counts, Options.Objective, firstMicroBatch: Comm.Rank == 0 && i == 0, Options.CheckpointLayers);
            tape.Backward(r.Loss);
            loss += r.Loss.Item();
            instrSum += r.InstructionSum;
            lmSum += r.LmSum;
            taskSum += r.TaskSum; reprSum += r.RepresentationSum; tempSum += r.TemperatureSum;
            tokens += micro[i].RealTokens;
        }
        SeedRngs(rngBase, GA * Comm.Size);
        if (_reducer != null)
        {
            Span<double> sums = [loss, instrSum, lmSum, tokens, taskSum, reprSum];
            _reducer.Reduce(sums);   // gradients and these sums, over all ranks
            (loss, instrSum, lmSum, tokens, taskSum, reprSum) = (sums[0], sums[1], sums[2], (int)sums[3], sums[4], sums[5]);
        }
        var (gradNorm, lr, verdict) = RegularizeClipAndStep(ref loss);
        double instructionLoss = counts.InstructionTokens == 0 ? 0 : instrSum / counts.InstructionTokens;
        return new StepResult(Step, loss, instructionLoss,
            counts.LmTokens == 0 ? 0 : lmSum / counts.LmTokens,
            gradNorm, lr, tokens, verdict, Guard.LastReason, clock.Elapsed.TotalSeconds, HeadMetrics(counts, instructionLoss, taskSum, reprSum, tempSum));
    }

    private StepResult Finish(StepOutcome o, Stopwatch clock)
    {
        double loss = o.Loss;
        var (gradNorm, lr, verdict) = RegularizeClipAndStep(ref loss);
        return new StepResult(Step, loss, 0, 0, gradNorm, lr, o.Tokens, verdict, Guard.LastReason, clock.Elapsed.TotalSeconds, o.Metrics);
    }

    /// <summary>Regularize → clip → guard → step (gradients are already accumulated), then advance the counter.</summary>
    private (double GradNorm, float Lr, StepVerdict Verdict) RegularizeClipAndStep(ref double loss)
    {
        var parameters = Trainable.Select(t => t.Parameter).ToList();
        Projection?.Project(parameters, Step);
        foreach (var regularizer in Regularizers) loss += regularizer.AddToGradients();

        double gradNorm = GradClip.ClipGlobalNorm(parameters, Options.MaxGradNorm > 0 ? Options.MaxGradNorm : float.PositiveInfinity);
        var verdict = Guard.Check(loss, gradNorm);
        float lr = Options.LearningRateAt?.Invoke(Step) ?? Options.Schedule.LearningRate(Step);
        if (verdict == StepVerdict.Apply)
        {
            Optimizer.LearningRate = lr;
            if (Zero != null) Zero.Step(); else Optimizer.Step();
        }
        foreach (var p in parameters) p.ZeroGrad();
        Step++;
        if (verdict == StepVerdict.Stop)
            throw new TrainingDivergedException($"step {Step}: {Guard.ConsecutiveBad} bad steps in a row, last: {Guard.LastReason}");
        return (gradNorm, lr, verdict);
    }

    /// <summary>
    /// Dropout and NEFTune noise draw from a stream keyed by (state at the step's start, global micro-batch index),
    /// so micro-batch g sees the same noise whichever rank computes it and however many ranks there are.
    /// </summary>
    private void SeedRngs(ulong[][] bases, int microBatch)
    {
        int k = 0;
        foreach (var rng in Rngs.Values)
        {
            var b = bases[k++];
            ulong key = b[0] ^ (b[1] * 0x9E3779B97F4A7C15UL) ^ ulong.RotateLeft(b[2], 21) ^ ulong.RotateLeft(b[3], 42);
            rng.State = new Rng(key + (ulong)microBatch * 0xD1B54A32D192ED03UL).State;
        }
    }

    /// <summary>The instruction-aware heads' losses (model.instruction_aware.task_head_weight / representation_alpha)
    /// beside the instruction loss, as step means; null when neither is on.</summary>
    private Dictionary<string, double>? HeadMetrics(StepCounts c, double instructionLoss, double taskSum, double reprSum, double tempSum)
    {
        if (c.TaskDocuments == 0 && c.RepresentationDocuments == 0 && c.TemperatureDocuments == 0) return null;
        var m = new Dictionary<string, double> { ["instruction_loss"] = instructionLoss };
        if (c.TaskDocuments > 0) m["task_head_loss"] = taskSum / c.TaskDocuments;
        if (c.TemperatureDocuments > 0) m["temperature_loss"] = tempSum / c.TemperatureDocuments;
        if (c.RepresentationDocuments > 0) m["representation_loss"] = reprSum / ((double)c.RepresentationDocuments * Model.Config.HiddenSize);
        return m;
    }

    /// <summary>The step's token counts over every rank's micro-batches (the losses' common denominators).</summary>
    private StepCounts SumOverRanks(StepCounts c)
    {
        if (Comm.Size == 1) return c;
        var v = new double[6 + c.TokensPerTask.Length];
        (v[0], v[1], v[2], v[3], v[4], v[5]) = (c.InstructionTokens, c.InstructionWeight, c.LmTokens, c.TaskDocuments, c.RepresentationDocuments, c.TemperatureDocuments);
        for (int k = 0; k < c.TokensPerTask.Length; k++) v[6 + k] = c.TokensPerTask[k];
        Comm.AllreduceSum(v);
        return new StepCounts((int)v[0], v[1], (int)v[2], v[6..].Select(x => (int)x).ToArray())
            { TaskDocuments = (int)v[3], RepresentationDocuments = (int)v[4], TemperatureDocuments = (int)v[5] };
    }
}
