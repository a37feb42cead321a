using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Tests.Optim;

/// <summary>20 AdamW steps on fixed gradients against torch.optim.AdamW (fixtures/engine/adamw.json), within 1e-6.</summary>
public class AdamWGoldenTests
{
    [Fact]
    public void TwentyStepsMatchTorch()
    {
        var root = Fixture.Load("adamw.json");
        var init = root.GetProperty("init").EnumerateArray().ToArray();
        var ps = init.Select(t => new Parameter(Fixture.Floats(t), Fixture.Shape(t))).ToArray();
        var wd = root.GetProperty("weight_decay").EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();
        var opt = new AdamW([new ParamGroup([ps[0]], wd[0]), new ParamGroup([ps[1]], wd[1])],
            lr: (float)root.GetProperty("lr").GetDouble(), beta1: (float)root.GetProperty("beta1").GetDouble(),
            beta2: (float)root.GetProperty("beta2").GetDouble(), eps: (float)root.GetProperty("eps").GetDouble());
        var grads = root.GetProperty("grads").EnumerateArray().ToArray();
        var traj = root.GetProperty("params").EnumerateArray().ToArray();
        for (int step = 0; step < 20; step++)
        {
            var g = grads[step].EnumerateArray().ToArray();
            for (int i = 0; i < ps.Length; i++) Fixture.Floats(g[i]).CopyTo(ps[i].EnsureGrad().Span);
            opt.Step();
            var expected = traj[step].EnumerateArray().ToArray();
            for (int i = 0; i < ps.Length; i++)
            {
                var e = Fixture.Floats(expected[i]); var a = ps[i].ToArray();
                for (int k = 0; k < e.Length; k++)
                    Assert.True(Math.Abs(e[k] - a[k]) <= 1e-6, $"step {step + 1}, param {i}[{k}]: torch {e[k]:R}, ours {a[k]:R}");
            }
        }
    }
}
