using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Tests.Optim;

/// <summary>Hand-worked optimizer steps (the PyTorch 20-step golden lives in AdamWGoldenTests).</summary>
public class OptimizerTests
{
    [Fact]
    public void AdamWFirstStepIsDecayPlusSignedLearningRate()
    {
        // Step 1: m̂ = g, v̂ = g², so p ← p(1 − lr·wd) − lr·g/(|g| + eps).
        var p = new Parameter([1f, -2f, 0.5f], 3);
        p.EnsureGrad();
        float[] g = [0.5f, -4f, 1e-3f];
        g.CopyTo(p.Grad!.Span);
        new AdamW([p], lr: 0.1f, weightDecay: 0.1f).Step();
        Assert.Equal(1f * 0.99f - 0.1f, p.Span[0], 6);
        Assert.Equal(-2f * 0.99f + 0.1f, p.Span[1], 6);
        Assert.Equal(0.5f * 0.99f - 0.1f * 1e-3f / (1e-3f + 1e-8f), p.Span[2], 6);
    }

    [Fact]
    public void SgdMomentumTwoSteps()
    {
        // buf₁ = g = 1 → p = 1 − 0.1 = 0.9; buf₂ = 0.9·1 + 1 = 1.9 → p = 0.9 − 0.19 = 0.71.
        var p = new Parameter([1f], 1);
        var opt = new Sgd([p], lr: 0.1f, momentum: 0.9f);
        for (int i = 0; i < 2; i++) { p.EnsureGrad().Span[0] = 1f; opt.Step(); }
        Assert.Equal(0.71f, p.Span[0], 6);
    }

    [Fact]
    public void GlobalNormClippingScalesAllGradientsTogether()
    {
        var a = new Parameter(2); var b = new Parameter(1);
        new float[] { 3f, 0f }.CopyTo(a.EnsureGrad().Span);
        b.EnsureGrad().Span[0] = 4f;                        // global norm 5
        float total = GradClip.ClipGlobalNorm([a, b], 1f);
        Assert.Equal(5f, total, 5);
        Assert.Equal(3f / (5f + 1e-6f), a.Grad!.Span[0], 6);
        Assert.Equal(4f / (5f + 1e-6f), b.Grad!.Span[0], 6);
        Assert.Equal(1f, GradClip.ClipGlobalNorm([a, b], 10f), 5); // below the limit: unchanged
    }

    [Theory]
    [InlineData(LrScheduleKind.Constant, 5, 0.5f)] [InlineData(LrScheduleKind.Constant, 50, 1f)]
    [InlineData(LrScheduleKind.Linear, 10, 1f)] [InlineData(LrScheduleKind.Linear, 60, 0.5f)] [InlineData(LrScheduleKind.Linear, 110, 0f)]
    [InlineData(LrScheduleKind.Cosine, 60, 0.5f)] [InlineData(LrScheduleKind.Cosine, 35, 0.853553f)] [InlineData(LrScheduleKind.Cosine, 110, 0f)]
    public void SchedulesWithWarmup(LrScheduleKind kind, int step, float expected)
    {
        // 10 warm-up steps, 110 total: the decay phase has 100 steps; cos(π/4) → 0.5(1 + 0.7071) = 0.853553.
        var s = new LrSchedule(kind, 2f, 10, 110);
        Assert.Equal(expected, s.Factor(step), 5);
        Assert.Equal(2f * expected, s.LearningRate(step), 5);
    }
}
