using InstructTune.Engine.Optim;

namespace InstructTune.Training.Continual;

/// <summary>
/// The learning rate of each optimizer step of a staged run (data.stages[k].learning_rate, continual.restart_schedule).
/// Stage k covers steps [start_k, start_k + steps_k); its peak is η_k (data.stages[k].learning_rate, or
/// training.learning_rate when 0).
/// restart: lr(s) = η_k · f(s − start_k; warmup, steps_k) — the configured schedule runs again inside every stage.
/// one schedule: lr(s) = η_k · f(s; warmup, total) — the run's schedule, scaled to the stage's peak.
/// f is <see cref="LrSchedule.Factor"/> (transformers' warm-up + constant/linear/cosine).
/// </summary>
public sealed class StageSchedule(LrScheduleKind kind, int warmupSteps, int totalSteps, IReadOnlyList<long> stageSteps,
    IReadOnlyList<float> peaks, bool restart)
{
    /// <summary>The stage (0-based) that step <paramref name="step"/> belongs to, and the step where that stage starts.</summary>
    public (int Stage, long Start) Locate(int step)
    {
        long start = 0;
        for (int k = 0; k < stageSteps.Count - 1; k++)
        {
            if (step < start + stageSteps[k]) return (k, start);
            start += stageSteps[k];
        }
        return (stageSteps.Count - 1, start);
    }

    public float LearningRate(int step)
    {
        var (k, start) = Locate(step);
        if (!restart) return peaks[k] * new LrSchedule(kind, 1f, warmupSteps, totalSteps).Factor(step);
        int local = (int)(step - start);
        return peaks[k] * new LrSchedule(kind, 1f, warmupSteps, (int)stageSteps[k]).Factor(local);
    }
}
