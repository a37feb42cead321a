using InstructTune.Engine.Kernels;
using InstructTune.Engine.Native;
using static InstructTune.Engine.Tests.GemmTestSupport;

namespace InstructTune.Engine.Tests;

/// <summary>bf16 × bf16 → float32 GEMM on every bf16 backend (managed always; oneDNN where libdnnl loads)
/// against the naive definition on the widened operands, and bf16 compute against float32 within the bound that
/// rounding both operands to 8 significant bits allows.</summary>
public class GemmBf16Tests
{
    private static readonly (int M, int N, int K)[] Bf16Shapes =
        [(1, 1, 1), (7, 7, 7), (63, 65, 257), (65, 63, 64), (257, 1, 65), (1, 1000, 7), (150, 40, 520), (130, 200, 90)];

    /// <summary>Round-to-nearest-even float32 → bf16 bits (independent of the engine's converter).</summary>
    private static ushort ToBf16(float x)
    {
        uint u = (uint)BitConverter.SingleToInt32Bits(x);
        return (ushort)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
    }

    private static Bf16GemmBackend[] Backends() =>
        OneDnn.IsAvailable ? [Bf16GemmBackend.Managed, Bf16GemmBackend.OneDnn] : [Bf16GemmBackend.Managed];

    private static void With(Bf16GemmBackend backend, Action body)
    {
        var saved = Gemm.Bf16Backend;
        try { Gemm.Bf16Backend = backend; body(); }
        finally { Gemm.Bf16Backend = saved; }
    }

    [Fact]
    public void EveryBackendMatchesNaiveOnEveryLayout()
    {
        foreach (var backend in Backends())
            With(backend, () =>
            {
                int seed = 300;
                foreach (var (ta, tb) in Layouts())
                    foreach (var (M, N, K) in Bf16Shapes)
                        foreach (var (alpha, beta) in new[] { (1f, 0f), (0.75f, 1f), (1f, 0.5f) })
                        {
                            var (a, lda, b, ldb, c, ldc) = Operands(ta, tb, M, N, K, nanC: beta == 0f, seed++);
                            var a16 = a.Select(ToBf16).ToArray();
                            var b16 = b.Select(ToBf16).ToArray();
                            var expected = (float[])c.Clone();
                            Gemm.GemmBf16Naive(ta, tb, M, N, K, alpha, a16, lda, b16, ldb, beta, expected, ldc);
                            Gemm.GemmBf16(ta, tb, M, N, K, alpha, a16, lda, b16, ldb, beta, c, ldc);
                            AssertClose(expected, c, M, N, K, ldc, alpha, $"{backend} {(ta ? "T" : "N")}{(tb ? "T" : "N")} [{M}×{N}×{K}] alpha={alpha} beta={beta}");
                        }
            });
    }

    /// <summary>
    /// Stated tolerance against float32: rounding a and b to bf16 changes each by at most 2⁻⁹ relative, so each
    /// product by at most (1 + 2⁻⁹)² − 1 &lt; 2⁻⁸ relative, and |C_bf16 − C_f32| ≤ 2⁻⁸ · Σₖ |aᵢₖ·bₖⱼ| (plus float32
    /// accumulation, 1e-5 here). The test also checks that the bound is not vacuous: bf16 differs from float32.
    /// </summary>
    [Fact]
    public void Bf16ComputeIsWithinTheRoundingBoundOfFloat32()
    {
        foreach (var backend in Backends())
            With(backend, () =>
            {
                int seed = 700;
                foreach (var (ta, tb) in Layouts())
                {
                    const int M = 96, N = 80, K = 300;
                    var (a, lda, b, ldb, c, ldc) = Operands(ta, tb, M, N, K, nanC: true, seed++);
                    var f32 = (float[])c.Clone();
                    Gemm.SgemmNaive(ta, tb, M, N, K, 1f, a, lda, b, ldb, 0f, f32, ldc);
                    var absA = a.Select(Math.Abs).ToArray();
                    var absB = b.Select(Math.Abs).ToArray();
                    var mag = (float[])c.Clone();
                    Gemm.SgemmNaive(ta, tb, M, N, K, 1f, absA, lda, absB, ldb, 0f, mag, ldc);
                    Gemm.SgemmAsBf16(ta, tb, M, N, K, 1f, a, lda, b, ldb, 0f, c, ldc);
                    double maxDiff = 0;
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++)
                        {
                            double d = Math.Abs(c[i * ldc + j] - f32[i * ldc + j]);
                            maxDiff = Math.Max(maxDiff, d);
                            double bound = mag[i * ldc + j] / 256.0 + 1e-5;
                            Assert.True(d <= bound, $"{backend} {(ta ? "T" : "N")}{(tb ? "T" : "N")}: C[{i},{j}] bf16 {c[i * ldc + j]} vs f32 {f32[i * ldc + j]}, |diff| {d} > {bound}");
                        }
                    Assert.True(maxDiff > 1e-4, $"{backend}: bf16 compute equals float32 (max diff {maxDiff}): operands were not rounded");
                }
            });
    }

    [Fact]
    public void Bf16ActivationTimesBf16WeightMatchesTheRoundedNaive()
    {
        foreach (var backend in Backends())
            With(backend, () =>
            {
                // Inference prefill: Y[T,O] = bf16(X)[T,K] · W[O,K]ᵀ with W stored bf16.
                const int T = 37, O = 70, K = 129;
                var x = Random(T * K, 5);
                var w16 = Random(O * K, 6).Select(ToBf16).ToArray();
                var y = new float[T * O];
                var expected = new float[T * O];
                Gemm.GemmBf16Naive(false, true, T, O, K, 1f, x.Select(ToBf16).ToArray(), K, w16, K, 0f, expected, O);
                Gemm.SgemmAsBf16(false, true, T, O, K, 1f, x, K, w16, K, 0f, y, O);
                AssertClose(expected, y, T, O, K, O, 1f, $"{backend} X·Wᵀ");
            });
    }

    [Fact]
    public void OneDnnCachesOnePrimitivePerShape()
    {
        if (!OneDnn.IsAvailable) return; // nothing to cache without the library
        With(Bf16GemmBackend.OneDnn, () =>
        {
            var a = Random(33 * 41, 1).Select(ToBf16).ToArray();
            var b = Random(41 * 29, 2).Select(ToBf16).ToArray();
            var c = new float[33 * 29];
            Gemm.GemmBf16(false, false, 33, 29, 41, 1f, a, 41, b, 29, 0f, c, 29);
            int after1 = OneDnn.CachedPrimitives;
            Gemm.GemmBf16(false, false, 33, 29, 41, 1f, a, 41, b, 29, 0f, c, 29);
            Assert.Equal(after1, OneDnn.CachedPrimitives);
            Assert.NotNull(OneDnn.Implementation(false, false, 33, 29, 41, 41, 29, 29, 1f, 0f));
        });
    }

    [Fact]
    public void BackendVariableIsHonouredOrRejected()
    {
        Assert.NotEqual(Bf16GemmBackend.Auto, Gemm.Bf16Backend);
        With(Bf16GemmBackend.Managed, () => Assert.Equal(Bf16GemmBackend.Managed, Gemm.Bf16Backend));
        if (!OneDnn.IsAvailable)
            Assert.Throws<InvalidOperationException>(() => Gemm.Bf16Backend = Bf16GemmBackend.OneDnn);
        Assert.Equal(Bf16GemmBackend.Managed, Gemm.ParseBf16BackendVariable(" Managed "));
        Assert.Equal(Bf16GemmBackend.OneDnn, Gemm.ParseBf16BackendVariable("onednn"));
        Assert.Equal(Bf16GemmBackend.Auto, Gemm.ParseBf16BackendVariable(null));
        var ex = Assert.Throws<InvalidOperationException>(() => Gemm.ParseBf16BackendVariable("mkl"));
        Assert.Contains("INSTRUCTTUNE_BF16_GEMM='mkl'", ex.Message);
    }

    [Fact]
    public void VectorisedRoundingMatchesTheScalarRule()
    {
        var rng = new Random(9);
        var x = new float[1000];
        for (int i = 0; i < x.Length; i++) x[i] = BitConverter.Int32BitsToSingle(rng.Next());
        x[3] = float.NaN; x[40] = float.PositiveInfinity; x[41] = float.MaxValue; x[77] = -0f;
        var got = new ushort[x.Length];
        InstructTune.Engine.Tensors.BFloat16.FromFloat(x, got);
        for (int i = 0; i < x.Length; i++)
            Assert.Equal(float.IsNaN(x[i]) ? (ushort)0xFFFF : ToBf16(x[i]), got[i]);
    }
}
