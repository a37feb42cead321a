using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Tests;

/// <summary>Random data and tolerant comparisons shared by the engine tests.</summary>
public static class TestUtil
{
    public static float[] Rand(int n, ulong seed, float scale = 1f)
    {
        var a = new float[n];
        new Rng(seed).Normal(a, 0, scale);
        return a;
    }

    public static Tensor RandTensor(ulong seed, float scale, params int[] shape)
    {
        var t = Tensor.FromArray(Rand(Tensor.ShapeLength(shape), seed, scale), shape);
        t.RequiresGrad = true;
        return t;
    }

    /// <summary>Asserts |a−b| ≤ atol + rtol·|b| elementwise, naming the first bad index.</summary>
    public static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double rtol = 1e-5, double atol = 1e-6, string what = "")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (double.IsNaN(e) && double.IsNaN(a)) continue;
            if (e == a) continue;
            if (!(Math.Abs(e - a) <= atol + rtol * Math.Abs(e)))
                Assert.Fail($"{what}[{i}]: expected {e:R}, got {a:R} (|diff| {Math.Abs(e - a):g3})");
        }
    }

    public static readonly int[] AwkwardSizes = [1, 7, 63, 65, 257, 1000];
}
