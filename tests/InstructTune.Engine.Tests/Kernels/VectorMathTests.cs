using InstructTune.Engine.Kernels;

namespace InstructTune.Engine.Tests.Kernels;

/// <summary>The vectorised exp/sigmoid/SwiGLU against double-precision Math.Exp, over the whole useful range
/// (a dense sweep plus the edges), on both the 8-wide lanes and the scalar tail.</summary>
public class VectorMathTests
{
    private static float[] Sweep()
    {
        var xs = new List<float>();
        for (double v = -90; v <= 90; v += 0.0137) xs.Add((float)v);
        xs.AddRange([0f, -0f, 1e-30f, -1e-30f, 88.72f, 88.7228f, -86.89f, -86.91f, 88.5f, -0.5f * MathF.Log(2), 0.5f * MathF.Log(2)]);
        xs.Add(3.3f); // odd count: the last values run through the scalar tail
        return [.. xs];
    }

    [Fact]
    public void Exp_is_within_a_few_ulp_of_double_precision()
    {
        var x = Sweep(); var y = new float[x.Length];
        VectorMath.Exp(x, y);
        for (int i = 0; i < x.Length; i++)
        {
            double want = Math.Exp(x[i]);
            if (x[i] < -86.9f) { Assert.Equal(0f, y[i]); continue; }       // documented flush below 2e-38
            if (want > float.MaxValue) { Assert.Equal(float.PositiveInfinity, y[i]); continue; }
            double rel = Math.Abs(y[i] - want) / want;
            Assert.True(rel < 4e-7, $"exp({x[i]:R}) = {y[i]:R}, want {want:R} (rel {rel:E2})");
        }
    }

    [Fact]
    public void Exp_edges_infinity_and_nan()
    {
        float[] x = [float.NegativeInfinity, float.PositiveInfinity, float.NaN, 89f, -100f, 0f, 1f, 2f, float.NaN];
        var y = new float[x.Length];
        VectorMath.Exp(x, y);
        Assert.Equal([0f, float.PositiveInfinity], y[..2]);
        Assert.True(float.IsNaN(y[2]) && float.IsNaN(y[8]), "NaN in, NaN out (vector lane and scalar tail)");
        Assert.Equal(float.PositiveInfinity, y[3]);
        Assert.Equal(0f, y[4]);
        Assert.Equal(1f, y[5]);
    }

    [Fact]
    public void Exp_may_write_in_place()
    {
        var x = Sweep(); var y = (float[])x.Clone();
        VectorMath.Exp(y, y);
        var z = new float[x.Length];
        VectorMath.Exp(x, z);
        Assert.Equal(z, y);
    }

    [Fact]
    public void Sigmoid_and_SwiGlu_match_double_precision()
    {
        var g = Sweep(); var u = g.Select((v, i) => (float)Math.Sin(i)).ToArray();
        var s = new float[g.Length]; var y = new float[g.Length];
        VectorMath.Sigmoid(g, s);
        VectorMath.SwiGlu(g, u, y);
        for (int i = 0; i < g.Length; i++)
        {
            double sig = 1 / (1 + Math.Exp(-(double)g[i]));
            Assert.True(Math.Abs(s[i] - sig) <= 2e-7 * sig + 1e-37, $"sigmoid({g[i]:R}) = {s[i]:R}, want {sig:R}");
            double sw = g[i] * sig * u[i];
            Assert.True(Math.Abs(y[i] - sw) <= 1e-6 * Math.Abs(sw) + 1e-30, $"swiglu({g[i]:R}, {u[i]:R}) = {y[i]:R}, want {sw:R}");
        }
    }
}
