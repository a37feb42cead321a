namespace InstructTune.Training.Loop;

public enum StepVerdict { Apply, Skip, Stop }

/// <summary>
/// Decides, before the optimizer applies a step, whether its loss and gradient norm are sane: a non-finite
/// value or a loss spike (above <c>spikeFactor</c> × the running mean of accepted losses, once warmed up)
/// skips the step; too many consecutive bad steps stop the run, since by then the model has diverged and
/// skipping only hides it. A spike factor of 0 turns spike detection off.
/// </summary>
public sealed class StepGuard(double spikeFactor, int maxConsecutiveBad, int warmupSteps = 10, double emaDecay = 0.9)
{
    private double _ema;
    private int _accepted;
    public int ConsecutiveBad { get; private set; }
    public int TotalSkipped { get; private set; }
    public string? LastReason { get; private set; }

    public StepVerdict Check(double loss, double gradNorm)
    {
        LastReason = !double.IsFinite(loss) ? $"non-finite loss ({loss})"
            : !double.IsFinite(gradNorm) ? $"non-finite gradient norm ({gradNorm})"
            : spikeFactor > 0 && _accepted >= warmupSteps && loss > spikeFactor * _ema
                ? $"loss spike ({loss:G4} > {spikeFactor} × running mean {_ema:G4})"
                : null;
        if (LastReason != null)
        {
            ConsecutiveBad++;
            TotalSkipped++;
            return ConsecutiveBad >= maxConsecutiveBad ? StepVerdict.Stop : StepVerdict.Skip;
        }
        ConsecutiveBad = 0;
        _ema = _accepted == 0 ? loss : emaDecay * _ema + (1 - emaDecay) * loss;
        _accepted++;
        return StepVerdict.Apply;
    }

    /// <summary>State that a checkpoint keeps, so a resumed run judges spikes as the uninterrupted one would.</summary>
    public (double Ema, int Accepted, int ConsecutiveBad, int TotalSkipped) State => (_ema, _accepted, ConsecutiveBad, TotalSkipped);

    public void Restore((double Ema, int Accepted, int ConsecutiveBad, int TotalSkipped) state) =>
        (_ema, _accepted, ConsecutiveBad, TotalSkipped) = state;
}
