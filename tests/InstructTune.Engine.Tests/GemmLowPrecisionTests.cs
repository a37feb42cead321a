using InstructTune.Engine.Kernels;
using InstructTune.Engine.Quantization;
using static InstructTune.Engine.Tests.GemmTestSupport;

namespace InstructTune.Engine.Tests;

/// <summary>bf16-B, NF4-B, GEMV and strided-batched paths against the naive definition on the widened or
/// dequantised operand (which is what each path promises to compute).</summary>
public class GemmLowPrecisionTests
{
    private static readonly (int M, int N, int K)[] LowShapes =
        [(1, 1, 1), (7, 7, 7), (63, 65, 257), (65, 63, 64), (257, 1, 65), (1, 1000, 7), (150, 40, 520), (2, 33, 1000)];

    /// <summary>Round-to-nearest-even float32 → bf16 bits (independent of the engine's converter).</summary>
    private static ushort ToBf16(float x)
    {
        uint u = (uint)BitConverter.SingleToInt32Bits(x);
        return (ushort)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
    }

    [Fact]
    public void Bf16BMatchesNaiveOnWidenedWeights()
    {
        int seed = 10;
        foreach (var (ta, tb) in Layouts())
            foreach (var (M, N, K) in LowShapes)
                foreach (var beta in new[] { 0f, 1f })
                {
                    var (a, lda, b, ldb, c, ldc) = Operands(ta, tb, M, N, K, nanC: beta == 0f, seed++);
                    var b16 = b.Select(ToBf16).ToArray();
                    var widened = b16.Select(h => BitConverter.Int32BitsToSingle(h << 16)).ToArray();
                    var expected = (float[])c.Clone();
                    Gemm.SgemmNaive(ta, tb, M, N, K, 0.75f, a, lda, widened, ldb, beta, expected, ldc);
                    Gemm.SgemmBf16B(ta, tb, M, N, K, 0.75f, a, lda, b16, ldb, beta, c, ldc);
                    AssertClose(expected, c, M, N, K, ldc, 0.75f, $"bf16 {(ta ? "T" : "N")}{(tb ? "T" : "N")} [{M}×{N}×{K}] beta={beta}");
                }
    }

    [Fact]
    public void Nf4BMatchesDequantiseThenGemm()
    {
        int seed = 50;
        foreach (var (ta, tb) in Layouts())
            foreach (var (M, N, K) in LowShapes)
            {
                int wRows = tb ? N : K, wCols = tb ? K : N;
                var w = Random(wRows * wCols, seed++);
                var q = Nf4Matrix.Quantize(w, wRows, wCols);
                var deq = new float[wRows * wCols];
                q.Dequantize(deq);
                var (a, lda, _, _, c, ldc) = Operands(ta, tb, M, N, K, nanC: true, seed++);
                var expected = (float[])c.Clone();
                Gemm.SgemmNaive(ta, tb, M, N, K, 1f, a, lda, deq, wCols, 0f, expected, ldc);
                Gemm.SgemmNf4B(ta, tb, M, N, K, 1f, a, lda, q, 0f, c, ldc);
                AssertClose(expected, c, M, N, K, ldc, 1f, $"nf4 {(ta ? "T" : "N")}{(tb ? "T" : "N")} [{M}×{N}×{K}]");
            }
    }

    [Fact]
    public void Nf4BRejectsAWeightOfTheWrongShape()
    {
        var q = Nf4Matrix.Quantize(new float[64 * 3], 3, 64);
        var ex = Assert.Throws<ArgumentException>(() =>
            Gemm.SgemmNf4B(false, true, 2, 4, 64, 1f, new float[128], 64, q, 0f, new float[8], 4));
        Assert.Contains("W must be [4×64] but is [3×64]", ex.Message);
    }

    [Fact]
    public void GemvRowsMatchNaiveForFp32AndBf16()
    {
        // M = 1..4 with transB take the GEMV path; K not a multiple of 8 exercises the scalar tails,
        // N = 4099 the odd final rows and the two-thread split.
        int seed = 90;
        foreach (int M in new[] { 1, 2, 3, 4 })
            foreach (var (N, K) in new[] { (1, 1), (7, 63), (4099, 65), (33, 1000) })
                foreach (var beta in new[] { 0f, 1f })
                {
                    var (a, lda, b, ldb, c, ldc) = Operands(false, true, M, N, K, nanC: beta == 0f, seed++);
                    var expected = (float[])c.Clone();
                    Gemm.SgemmNaive(false, true, M, N, K, 2f, a, lda, b, ldb, beta, expected, ldc);
                    var got = (float[])c.Clone();
                    Gemm.SgemmOn(GemmBackend.Managed, false, true, M, N, K, 2f, a, lda, b, ldb, beta, got, ldc);
                    AssertClose(expected, got, M, N, K, ldc, 2f, $"gemv fp32 M={M} [{N}×{K}] beta={beta}");

                    var b16 = b.Select(ToBf16).ToArray();
                    var widened = b16.Select(h => BitConverter.Int32BitsToSingle(h << 16)).ToArray();
                    expected = (float[])c.Clone();
                    Gemm.SgemmNaive(false, true, M, N, K, 2f, a, lda, widened, ldb, beta, expected, ldc);
                    Gemm.SgemmBf16B(false, true, M, N, K, 2f, a, lda, b16, ldb, beta, c, ldc);
                    AssertClose(expected, c, M, N, K, ldc, 2f, $"gemv bf16 M={M} [{N}×{K}] beta={beta}");
                }
    }

    [Theory]
    [InlineData(GemmBackend.Managed, 1)]
    [InlineData(GemmBackend.Managed, 12)]
    [InlineData(GemmBackend.OpenBlas, 5)]
    public void StridedBatchedMatchesPerItemNaive(GemmBackend backend, int batch)
    {
        if (backend == GemmBackend.OpenBlas && !Native.OpenBlas.IsAvailable) return;
        var saved = Gemm.Backend;
        Gemm.Backend = backend;
        try
        {
            int seed = 200;
            foreach (var (ta, tb) in Layouts())
                foreach (var (M, N, K) in new[] { (7, 63, 65), (64, 64, 32), (1, 5, 257) })
                {
                    var (a0, lda, b0, ldb, c0, ldc) = Operands(ta, tb, M, N, K, nanC: true, seed++);
                    // Items strided with a gap so out-of-item writes would show.
                    long sa = a0.Length + 5, sb = b0.Length + 7, sc = c0.Length + 11;
                    var a = Random((int)(sa * batch), seed++); var b = Random((int)(sb * batch), seed++);
                    var c = Enumerable.Repeat(float.NaN, (int)(sc * batch)).ToArray();
                    var expected = (float[])c.Clone();
                    for (int i = 0; i < batch; i++)
                        Gemm.SgemmNaive(ta, tb, M, N, K, 1f, a.AsSpan((int)(i * sa)), lda, b.AsSpan((int)(i * sb)), ldb, 0f,
                            expected.AsSpan((int)(i * sc)), ldc);
                    Gemm.SgemmStridedBatched(ta, tb, M, N, K, 1f, a, lda, sa, b, ldb, sb, 0f, c, ldc, sc, batch);
                    for (int i = 0; i < batch; i++)
                        AssertClose(expected[(int)(i * sc)..(int)((i + 1) * sc)], c[(int)(i * sc)..(int)((i + 1) * sc)],
                            M, N, K, ldc, 1f, $"batched {backend} item {i} {(ta ? "T" : "N")}{(tb ? "T" : "N")} [{M}×{N}×{K}]");
                }
        }
        finally { Gemm.Backend = saved; }
    }
}
