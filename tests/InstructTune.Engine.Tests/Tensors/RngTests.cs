using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Tests.Tensors;

public class RngTests
{
    [Fact]
    public void SameSeedSameStreamAndStateRestores()
    {
        var a = new Rng(42); var b = new Rng(42);
        var state = a.State;
        var x = new float[100]; var y = new float[100];
        a.Normal(x); b.Normal(y);
        Assert.Equal(x, y);
        a.State = state;
        a.Normal(y);
        Assert.Equal(x, y);
        Assert.NotEqual(x, Enumerable.Range(0, 100).Select(_ => 0f).ToArray());
        var c = new float[100]; new Rng(43).Normal(c);
        Assert.NotEqual(x, c);
    }

    [Fact]
    public void NormalUniformAndDropoutHaveTheirMoments()
    {
        var rng = new Rng(7);
        var n = new float[200_000];
        rng.Normal(n, 1f, 2f);
        double mean = n.Average(v => (double)v), sd = Math.Sqrt(n.Average(v => (v - mean) * (v - mean)));
        Assert.InRange(mean, 0.98, 1.02); Assert.InRange(sd, 1.98, 2.02);
        rng.Uniform(n, -1f, 3f);
        Assert.InRange(n.Min(), -1f, -0.999f); Assert.True(n.Max() < 3f);
        Assert.InRange(n.Average(v => (double)v), 0.98, 1.02);
        rng.DropoutMask(n, 0.25f);
        Assert.All(n, v => Assert.True(v == 0f || v == 1f / 0.75f));
        Assert.InRange(n.Count(v => v == 0f) / (double)n.Length, 0.245, 0.255);
        Assert.Throws<ArgumentOutOfRangeException>(() => rng.DropoutMask(n, 1f));
    }
}
