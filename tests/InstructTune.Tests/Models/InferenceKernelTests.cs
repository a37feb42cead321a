// Optimised inference kernels against their naive double-precision twins on awkward shapes.
using InstructTune.Checkpoints;
using InstructTune.Models.Inference;

namespace InstructTune.Tests.Models;

public class InferenceKernelTests
{
    private static float[] Rand(Random r, int n, float scale = 1) => Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * scale).ToArray();

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1, 7, 63)]
    [InlineData(3, 65, 7)]
    [InlineData(2, 257, 65)]
    [InlineData(5, 1000, 33)]
    [InlineData(1, 300, 1000)]   // above the parallel threshold
    [InlineData(1, 5, 16)]
    [InlineData(3, 9, 47)]       // odd token count: pairs then a single-token tile
    [InlineData(7, 63, 257)]
    [InlineData(8, 65, 63)]      // GEMM path from 8 tokens on
    [InlineData(33, 257, 100)]
    [InlineData(1, 13, 48)]      // one 512-bit step, then one 256-bit step
    [InlineData(1, 300, 1008)]   // 512-bit steps, a 256-bit step, parallel
    [InlineData(1, 6, 1031)]     // 512-bit steps, a 256-bit step and a scalar tail
    public void Linear_matches_naive_for_f32_and_bf16(int T, int O, int K)
    {
        // Decode tiles at 512 bits (where the CPU has AVX-512) and at 256 bits.
        bool saved = LinearKernels.UseAvx512;
        try
        {
            foreach (bool wide in System.Runtime.Intrinsics.X86.Avx512BW.IsSupported ? new[] { true, false } : [false])
            {
                LinearKernels.UseAvx512 = wide;
                LinearMatchesNaive(T, O, K);
            }
        }
        finally { LinearKernels.UseAvx512 = saved; }
    }

    private static void LinearMatchesNaive(int T, int O, int K)
    {
        var r = new Random(T * 1000 + O + K);
        var x = Rand(r, T * K);
        var w = Rand(r, O * K);
        var bias = Rand(r, O);
        var bf = w.Select(DTypes.F32ToBf16).ToArray();
        foreach (var W in new[] { WeightMatrix.FromF32(O, K, w), WeightMatrix.FromBf16(O, K, bf) })
            foreach (var b in new[] { bias, Array.Empty<float>() })
            {
                var y = new float[T * O];
                var yn = new float[T * O];
                LinearKernels.Forward(x, W, b, y, T);
                LinearKernels.ForwardNaive(x, W, b, yn, T);
                GoldenFixture.AssertClose(yn, y, 1e-5 * Math.Sqrt(K), $"T={T} O={O} K={K} bf16={W.IsBf16}");
            }
    }

    [Theory]
    [InlineData(1, 64)]
    [InlineData(3, 300)]     // above the parallel threshold: blocks of three matrices split across threads
    [InlineData(9, 65)]      // GEMM path
    public void Forward_many_matches_naive_per_product(int T, int K)
    {
        var r = new Random(T + K);
        var x = Rand(r, T * K);
        int[] rows = [K, 7, 257];
        var products = rows.Select((o, i) => (W: i == 1 ? WeightMatrix.FromBf16(o, K, Rand(r, o * K).Select(DTypes.F32ToBf16).ToArray())
                                                        : WeightMatrix.FromF32(o, K, Rand(r, o * K)),
                                              Bias: i == 2 ? null : Rand(r, o), Y: new float[T * o])).ToArray();
        LinearKernels.ForwardMany(x, T, products);
        foreach (var (w, b, y) in products)
        {
            var yn = new float[y.Length];
            LinearKernels.ForwardNaive(x, w, b ?? [], yn, T);
            GoldenFixture.AssertClose(yn, y, 1e-5 * Math.Sqrt(K), $"rows {w.Rows}");
        }
    }

    [Theory]
    [InlineData(0, 8, 0)]
    [InlineData(5, 16, 0)]
    [InlineData(12, 16, 5)]
    [InlineData(63, 24, 7)]
    [InlineData(64, 64, 1)]
    [InlineData(301, 64, 0)]    // many 4-key blocks and a remainder of 2
    [InlineData(130, 128, 50)]  // two 64-wide output blocks, window
    [InlineData(33, 80, 0)]     // one 64-wide block and two 8-wide chunks
    [InlineData(17, 12, 0)]     // head width not a multiple of 8: the portable path
    public void Cached_attention_row_matches_naive(int i, int hd, int window)
    {
        var r = new Random(i + hd + window);
        int cap = i + 3;
        var q = Rand(r, hd, 3); var K = Rand(r, cap * hd, 3); var V = Rand(r, cap * hd);
        var o = new float[hd]; var on = new float[hd];
        CachedAttention.Row(q, K, V, hd, i, window, new float[cap], o);
        CachedAttention.RowNaive(q, K, V, hd, i, window, on);
        GoldenFixture.AssertClose(on, o, 1e-5, "attention");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(688)]
    [InlineData(1300)] // two full blocks and a tail
    public void SwiGlu_matches_the_engine_definition(int n)
    {
        var r = new Random(n);
        var g = Rand(r, n, 6); var u = Rand(r, n);
        var expected = new float[n];
        InstructTune.Engine.Kernels.ActivationKernels.SwiGluForwardNaive(g, u, expected);
        InferenceOps.SwiGlu(g, u);
        GoldenFixture.AssertClose(expected, g, 1e-6, "swiglu");
    }

    [Fact]
    public void Rope_rotates_pairs_half_split()
    {
        // Hand-worked: hd = 4, pairs (x0, x2) and (x1, x3) rotate by angles a and b.
        float a = 0.3f, b = 1.1f;
        var x = new float[] { 1, 2, 3, 4 };
        InferenceOps.Rope(x, 1, 4, [MathF.Cos(a), MathF.Cos(b)], [MathF.Sin(a), MathF.Sin(b)]);
        Assert.Equal(1 * MathF.Cos(a) - 3 * MathF.Sin(a), x[0], 6);
        Assert.Equal(3 * MathF.Cos(a) + 1 * MathF.Sin(a), x[2], 6);
        Assert.Equal(2 * MathF.Cos(b) - 4 * MathF.Sin(b), x[1], 6);
        Assert.Equal(4 * MathF.Cos(b) + 2 * MathF.Sin(b), x[3], 6);
    }

    [Fact]
    public void Rms_norm_hand_worked()
    {
        var y = new float[2];
        InferenceOps.RmsNorm([3, 4], [1, 2], 0f, y, 1, 2);   // rms = √12.5
        Assert.Equal(3 / MathF.Sqrt(12.5f), y[0], 6);
        Assert.Equal(8 / MathF.Sqrt(12.5f), y[1], 6);
    }
}
