using InstructTune.Engine.Kernels;
using InstructTune.Engine.Quantization;
using static InstructTune.Engine.Tests.GemmTestSupport;

namespace InstructTune.Engine.Tests.Kernels;

/// <summary>q8_0 × q8_0 GEMV (VNNI and widening paths) against its double-precision definition, and against the
/// float32 product of the dequantised weights within the error that quantising x to q8_0 allows.</summary>
public class Q8GemvTests
{
    /// <summary>W quantised by ggml's rule (the GGUF exporter's Q8_0.Quantize) into ggml's blocks, and dequantised.</summary>
    private static (byte[] Blocks, float[] Deq) Quantize(float[] w, int O, int K)
    {
        var bytes = new byte[Q8_0.ByteCount((long)O * K)];
        Q8_0.Quantize(w, bytes);
        var deq = new float[O * K];
        Q8_0.Dequantize(bytes, deq);
        return (bytes, deq);
    }

    [Fact]
    public void BothPathsMatchTheDefinitionAndTheDequantisedFloatProduct()
    {
        bool saved = Q8Gemv.UseVnni;
        try
        {
            foreach (bool vnni in System.Runtime.Intrinsics.X86.AvxVnni.IsSupported ? new[] { true, false } : [false])
            {
                Q8Gemv.UseVnni = vnni;
                int seed = 1;
                foreach (var (O, K, T) in new[] { (1, 32, 1), (7, 64, 1), (63, 96, 3), (65, 800, 1), (300, 256, 2), (1000, 64, 1) })
                {
                    var w = Random(O * K, seed++); var x = Random(T * K, seed++, -3f, 3f);
                    x[0] = 0f; // a zero block value: sign trick must give 0
                    var (blocks, deq) = Quantize(w, O, K);
                    var y = new float[T * O]; var expected = new float[T * O]; var f32 = new float[T * O];
                    Q8Gemv.Forward(x, blocks, O, K, y, T);
                    Q8Gemv.ForwardNaive(x, blocks, O, K, expected, T);
                    Gemm.SgemmNaive(false, true, T, O, K, 1f, x, K, deq, K, 0f, f32, O);
                    for (int i = 0; i < y.Length; i++)
                    {
                        Assert.True(Math.Abs(y[i] - expected[i]) <= 1e-5f * K + 1e-5f, $"vnni={vnni} [{O}×{K}] T={T} y[{i}] {y[i]} vs definition {expected[i]}");
                        // Quantising x moves each term by at most |w|·dx/2 with dx = max|x_block|/127: bounded by
                        // Σ|w|·3/254 for |x| ≤ 3.
                        double bound = deq.Skip((i % O) * K).Take(K).Sum(v => Math.Abs(v)) * 3.0 / 254 + 1e-4;
                        Assert.True(Math.Abs(y[i] - f32[i]) <= bound, $"vnni={vnni} [{O}×{K}] y[{i}] {y[i]} vs float {f32[i]} (bound {bound})");
                    }
                }
            }
        }
        finally { Q8Gemv.UseVnni = saved; }
    }

    [Fact]
    public void RejectsARowLengthThatIsNotBlocks()
    {
        var e = Assert.Throws<ArgumentException>(() => Q8Gemv.Forward(new float[33], new byte[68], 1, 33, new float[1], 1));
        Assert.Contains("multiple of 32", e.Message);
        e = Assert.Throws<ArgumentException>(() => Q8Gemv.Forward(new float[64], new byte[67], 1, 64, new float[1], 1));
        Assert.Contains("do not fit", e.Message);
    }

    /// <summary>The scale decoder against .NET's own Half → float conversion for every finite half.</summary>
    [Fact]
    public void HalfToSingle_is_exact_for_every_finite_half()
    {
        for (int h = 0; h < 65536; h++)
        {
            var half = BitConverter.UInt16BitsToHalf((ushort)h);
            if (!Half.IsFinite(half)) continue;
            Assert.Equal(BitConverter.SingleToInt32Bits((float)half), BitConverter.SingleToInt32Bits(Q8Gemv.HalfToSingle((ushort)h)));
        }
    }
}
