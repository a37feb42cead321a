// The inference linear layer on WeightMatrix storage (InferenceLinear: arrays pinned, then the engine's
// LinearKernel) against the naive double-precision twin, on a few shapes covering the decode tiles at both widths,
// ForwardMany and the prompt GEMM. The kernel itself, with every shape and q8_0, is tested in
// tests/InstructTune.Engine.Tests/Kernels/LinearKernelTests.cs; attention over the KV cache, RoPE, RMSNorm, SwiGLU
// and log-softmax are engine kernels too (CachedAttentionTests, KernelTwinTests).
using InstructTune.Checkpoints;
using InstructTune.Engine.Kernels;
using InstructTune.Models.Inference;

namespace InstructTune.Tests.Models;

public class InferenceKernelTests
{
    private static float[] Rand(Random r, int n, float scale = 1) => Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * scale).ToArray();

    [Theory]
    [InlineData(1, 7, 63)]
    [InlineData(3, 9, 47)]       // odd token count: pairs then a single-token tile
    [InlineData(8, 65, 63)]      // GEMM path from 8 tokens on
    [InlineData(1, 300, 1008)]   // 512-bit steps, a 256-bit step, parallel
    public void Linear_matches_naive_for_f32_and_bf16(int T, int O, int K)
    {
        // Decode tiles at 512 bits (where the CPU has AVX-512) and at 256 bits.
        bool saved = LinearKernel.UseAvx512;
        try
        {
            foreach (bool wide in System.Runtime.Intrinsics.X86.Avx512BW.IsSupported ? new[] { true, false } : [false])
            {
                LinearKernel.UseAvx512 = wide;
                LinearMatchesNaive(T, O, K);
            }
        }
        finally { LinearKernel.UseAvx512 = saved; }
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
                InferenceLinear.Forward(x, W, b, y, T);
                InferenceLinear.ForwardNaive(x, W, b, yn, T);
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
        InferenceLinear.ForwardMany(x, T, products);
        foreach (var (w, b, y) in products)
        {
            var yn = new float[y.Length];
            InferenceLinear.ForwardNaive(x, w, b ?? [], yn, T);
            GoldenFixture.AssertClose(yn, y, 1e-5 * Math.Sqrt(K), $"rows {w.Rows}");
        }
    }
}
