// Learning-rate schedules with linear warm-up, as transformers' get_{constant,linear,cosine}_schedule_with_warmup:
// the factor multiplies the base learning rate at optimizer step `step` (0-based, before the step is taken).
namespace InstructTune.Engine.Optim;

public enum LrScheduleKind { Constant, Linear, Cosine }

public sealed record LrSchedule(LrScheduleKind Kind, float BaseLr, int WarmupSteps, int TotalSteps, float MinLrRatio = 0f)
{
    public float Factor(int step)
    {
        if (step < WarmupSteps) return (float)step / Math.Max(1, WarmupSteps);
        if (Kind == LrScheduleKind.Constant) return 1f;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        double f = Kind == LrScheduleKind.Linear
            ? Math.Max(0.0, 1.0 - progress)
            : Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * progress)));
        return (float)(MinLrRatio + (1 - MinLrRatio) * f);
    }

    public float LearningRate(int step) => BaseLr * Factor(step);

    public static LrScheduleKind Parse(string name) => name.ToLowerInvariant() switch
    {
        "constant" => LrScheduleKind.Constant,
        "linear" => LrScheduleKind.Linear,
        "cosine" => LrScheduleKind.Cosine,
        _ => throw new ArgumentException($"unknown learning-rate schedule '{name}' (constant, linear, cosine)"),
    };
}
