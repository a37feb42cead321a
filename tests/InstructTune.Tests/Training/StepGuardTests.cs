using InstructTune.Training.Loop;

namespace InstructTune.Tests.Training;

public class StepGuardTests
{
    [Fact]
    public void NonFiniteLossOrGradientSkipsAndRepeatedBadStepsStop()
    {
        var guard = new StepGuard(spikeFactor: 0, maxConsecutiveBad: 3);
        Assert.Equal(StepVerdict.Apply, guard.Check(2.0, 1.0));
        Assert.Equal(StepVerdict.Skip, guard.Check(double.NaN, 1.0));
        Assert.Equal(StepVerdict.Skip, guard.Check(2.0, double.PositiveInfinity));
        Assert.Contains("gradient", guard.LastReason);
        Assert.Equal(StepVerdict.Stop, guard.Check(double.NegativeInfinity, 1.0));
        Assert.Equal(3, guard.TotalSkipped);
    }

    [Fact]
    public void SpikesAreJudgedAgainstTheRunningMeanAfterWarmup()
    {
        var guard = new StepGuard(spikeFactor: 3, maxConsecutiveBad: 5, warmupSteps: 4);
        Assert.Equal(StepVerdict.Apply, guard.Check(100, 1));   // early steps are never spikes
        for (int i = 0; i < 40; i++) Assert.Equal(StepVerdict.Apply, guard.Check(1.0, 1));
        Assert.Equal(StepVerdict.Apply, guard.Check(2.9, 1));   // the running mean has decayed toward 1 (≈ 2.5): no spike
        Assert.Equal(StepVerdict.Skip, guard.Check(10.0, 1));
        Assert.Equal(StepVerdict.Apply, guard.Check(1.0, 1));
        Assert.Equal(0, guard.ConsecutiveBad);
    }

    [Fact]
    public void EarlyStoppingCountsEvaluationsWithoutImprovement()
    {
        var stop = new EarlyStopping(patience: 2);
        Assert.False(stop.Observe(3.0));
        Assert.False(stop.Observe(2.5));
        Assert.False(stop.Observe(2.6));
        Assert.True(stop.Observe(2.5));
        Assert.Equal(2.5, stop.Best);
    }
}
