using System.Diagnostics;
using InstructTune.Data.Batching;
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
    int MaxBadSteps = 5);

/// <summary>
/// One optimizer step at a time: draw the micro-batches of the step, count their tokens, forward/backward each
/// (dividing by the step's counts), add regularizer gradients, clip the global norm, let the guard judge, then
/// AdamW at the scheduled learning rate. A skipped step still consumes its data and advances the step counter,
/// so a run's schedule and data order do not depend on which steps were skipped.
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
    /// <summary>Random generators whose state a checkpoint must keep (dropout, NEFTune), by name.</summary>
    public Dictionary<string, Rng> Rngs { get; } = [];
    public int Step { get; set; }
    /// <summary>When set, replaces the instruction loss of <see cref="TrainerOptions.Objective"/> (feedback objectives).</summary>
    public IStepObjective? StepObjective { get; init; }

    public Trainer(LlamaModel model, IReadOnlyList<(string Name, Parameter Parameter)> trainable, AdamW optimizer,
        IBatchSource sampler, TrainerOptions options)
    {
        if (trainable.Count == 0) throw new ArgumentException("nothing to train: every parameter is frozen");
        Model = model; Trainable = trainable; Optimizer = optimizer; Sampler = sampler; Options = options;
        Guard = new StepGuard(options.SpikeFactor, options.MaxBadSteps);
    }

    public StepResult TrainStep()
    {
        var clock = Stopwatch.StartNew();
        var micro = new List<Batch>(Options.GradientAccumulationSteps);
        for (int i = 0; i < Options.GradientAccumulationSteps; i++) micro.Add(Sampler.Next());
        if (StepObjective != null) return Finish(StepObjective.ForwardBackward(Model, micro, Options.CheckpointLayers), clock);
        var counts = InstructionObjective.Count(micro, Options.Objective, Options.TaskCount);

        double loss = 0, instrSum = 0, lmSum = 0;
        int tokens = 0;
        for (int i = 0; i < micro.Count; i++)
        {
            using var tape = Tape.Record();
            var r = InstructionObjective.Forward(Model, micro[i], counts, Options.Objective, firstMicroBatch: i == 0, Options.CheckpointLayers);
            tape.Backward(r.Loss);
            loss += r.Loss.Item();
            instrSum += r.InstructionSum;
            lmSum += r.LmSum;
            tokens += micro[i].RealTokens;
        }
        var (gradNorm, lr, verdict) = RegularizeClipAndStep(ref loss);
        return new StepResult(Step, loss,
            counts.InstructionTokens == 0 ? 0 : instrSum / counts.InstructionTokens,
            counts.LmTokens == 0 ? 0 : lmSum / counts.LmTokens,
            gradNorm, lr, tokens, verdict, Guard.LastReason, clock.Elapsed.TotalSeconds);
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
        foreach (var regularizer in Regularizers) loss += regularizer.AddToGradients();

        var parameters = Trainable.Select(t => t.Parameter).ToList();
        double gradNorm = GradClip.ClipGlobalNorm(parameters, Options.MaxGradNorm > 0 ? Options.MaxGradNorm : float.PositiveInfinity);
        var verdict = Guard.Check(loss, gradNorm);
        float lr = Options.Schedule.LearningRate(Step);
        if (verdict == StepVerdict.Apply)
        {
            Optimizer.LearningRate = lr;
            Optimizer.Step();
        }
        foreach (var p in parameters) p.ZeroGrad();
        Step++;
        if (verdict == StepVerdict.Stop)
            throw new TrainingDivergedException($"step {Step}: {Guard.ConsecutiveBad} bad steps in a row, last: {Guard.LastReason}");
        return (gradNorm, lr, verdict);
    }
}
