using InstructTune.Engine.Kernels;
using InstructTune.Engine.Native;
using static InstructTune.Engine.Tests.GemmTestSupport;

namespace InstructTune.Engine.Tests;

/// <summary>Managed and OpenBLAS SGEMM against the naive definition, every layout, awkward shapes.</summary>
public class GemmTests
{
    public static TheoryData<bool, bool, float, float> Cases()
    {
        var data = new TheoryData<bool, bool, float, float>();
        foreach (var (ta, tb) in Layouts())
        {
            data.Add(ta, tb, 1f, 0f);      // overwrite, C full of NaN
            data.Add(ta, tb, 1f, 1f);      // accumulate
            data.Add(ta, tb, -0.5f, 0.25f); // general alpha/beta
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ManagedMatchesNaive(bool transA, bool transB, float alpha, float beta) =>
        CheckBackend(GemmBackend.Managed, transA, transB, alpha, beta);

    [Theory]
    [MemberData(nameof(Cases))]
    public void OpenBlasMatchesNaive(bool transA, bool transB, float alpha, float beta)
    {
        if (!OpenBlas.IsAvailable)
        {
            Assert.Throws<InvalidOperationException>(() => Gemm.Backend = GemmBackend.OpenBlas);
            return; // libopenblas0-pthread not installed: the managed path is the only one to test.
        }
        CheckBackend(GemmBackend.OpenBlas, transA, transB, alpha, beta);
    }

    [Fact]
    public void EveryTileKindTheCpuHasMatchesNaive()
    {
        // The default kind is covered by the theories above; here each other kind this CPU can run
        // (AVX2 on an AVX-512 machine, the portable fallback everywhere) goes through all layouts.
        var saved = GemmMicroKernel.Kind;
        var kinds = new List<GemmTileKind> { GemmTileKind.Portable };
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported) kinds.Add(GemmTileKind.Avx2);
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) kinds.Add(GemmTileKind.Avx512);
        try
        {
            foreach (var kind in kinds)
            {
                GemmMicroKernel.Kind = kind;
                foreach (var (ta, tb) in Layouts())
                    foreach (var (M, N, K) in new[] { (7, 17, 263), (63, 65, 30), (1, 5, 3), (150, 300, 70) })
                        CheckOne(GemmBackend.Managed, ta, tb, M, N, K, 1.5f, 0.5f);
            }
        }
        finally { GemmMicroKernel.Kind = saved; }
    }

    [Fact]
    public void SmallBlockSizesExerciseEveryBlockingLoop()
    {
        // Blocks smaller than the matrix in every dimension: many jc, pc and ic iterations and edge tiles.
        var (mc, kc, nc) = (GemmBlocked.MC, GemmBlocked.KC, GemmBlocked.NC);
        (GemmBlocked.MC, GemmBlocked.KC, GemmBlocked.NC) = (12, 20, 32);
        try
        {
            foreach (var (ta, tb) in Layouts()) CheckOne(GemmBackend.Managed, ta, tb, 65, 70, 63, 1f, 1f);
        }
        finally { (GemmBlocked.MC, GemmBlocked.KC, GemmBlocked.NC) = (mc, kc, nc); }
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void LargeTrainingShapesMatchNaiveOnEveryBackend()
    {
        // Shapes near a config-L step (several MC/KC blocks, many chunks), every layout, beta 0 and 1.
        foreach (var (ta, tb) in Layouts())
            foreach (var backend in OpenBlas.IsAvailable ? new[] { GemmBackend.Managed, GemmBackend.OpenBlas } : [GemmBackend.Managed])
            {
                CheckOne(backend, ta, tb, 300, 1100, 700, 1f, 0f, 7);
                CheckOne(backend, ta, tb, 3500, 40, 520, 1f, 1f, 8);
            }
    }

    [Fact]
    public void ConcurrentCallersGetCorrectResults()
    {
        // Several threads calling at once: one holds the worker team, the others run on their own thread.
        var (a, lda, b, ldb, _, ldc) = Operands(false, true, 130, 200, 90, nanC: false, 3);
        var expected = new float[130 * ldc];
        Gemm.SgemmNaive(false, true, 130, 200, 90, 1f, a, lda, b, ldb, 0f, expected, ldc);
        var results = new float[6][];
        Parallel.For(0, 6, t =>
        {
            var c = new float[130 * ldc];
            for (int rep = 0; rep < 5; rep++) Gemm.SgemmOn(GemmBackend.Managed, false, true, 130, 200, 90, 1f, a, lda, b, ldb, 0f, c, ldc);
            results[t] = c;
        });
        foreach (var c in results) AssertClose(expected, c, 130, 200, 90, ldc, 1f, "concurrent");
    }

    [Fact]
    public void KZeroScalesCAndShapeErrorsNameTheOp()
    {
        var c = new float[] { 1, 2, 3, 4 };
        Gemm.Sgemm(false, false, 2, 2, 0, 1f, [], 1, [], 2, 0.5f, c, 2);
        Assert.Equal([0.5f, 1f, 1.5f, 2f], c);
        Gemm.Sgemm(false, false, 2, 2, 0, 1f, [], 1, [], 2, 0f, c, 2);
        Assert.Equal([0f, 0f, 0f, 0f], c);

        var ex = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, true, 2, 3, 4, 1f, new float[8], 4, new float[11], 4, 0f, new float[6], 3));
        Assert.Contains("Sgemm(NT)", ex.Message);
        Assert.Contains("B has 11 elements, needs 12", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Gemm.Sgemm(false, false, 2, 3, 4, 1f, new float[8], 3, new float[12], 3, 0f, new float[6], 3));
        Assert.Contains("lda must be ≥ 4", ex.Message);
    }

    [Fact]
    public void BackendVariableIsHonouredOrRejected()
    {
        // The property reports a concrete backend, never Auto.
        Assert.NotEqual(GemmBackend.Auto, Gemm.Backend);
        var saved = Gemm.Backend;
        try
        {
            Gemm.Backend = GemmBackend.Managed;
            Assert.Equal(GemmBackend.Managed, Gemm.Backend);
            Gemm.Backend = GemmBackend.Auto;
            Assert.Equal(OpenBlas.IsAvailable ? GemmBackend.OpenBlas : GemmBackend.Managed, Gemm.Backend);
        }
        finally { Gemm.Backend = saved; }
        Assert.Equal(GemmBackend.Managed, Gemm.ParseBackendVariable(" Managed "));
        Assert.Equal(GemmBackend.OpenBlas, Gemm.ParseBackendVariable("openblas"));
        Assert.Equal(GemmBackend.Auto, Gemm.ParseBackendVariable(null));
        Assert.Equal(GemmBackend.Auto, Gemm.ParseBackendVariable("auto"));
        var ex = Assert.Throws<InvalidOperationException>(() => Gemm.ParseBackendVariable("mkl"));
        Assert.Contains("INSTRUCTTUNE_GEMM='mkl'", ex.Message);
    }

    private static void CheckBackend(GemmBackend backend, bool transA, bool transB, float alpha, float beta)
    {
        int seed = 0;
        foreach (var (M, N, K) in Shapes) CheckOne(backend, transA, transB, M, N, K, alpha, beta, seed++);
    }

    internal static void CheckOne(GemmBackend backend, bool transA, bool transB, int M, int N, int K,
        float alpha, float beta, int seed = 1)
    {
        var (a, lda, b, ldb, c, ldc) = Operands(transA, transB, M, N, K, nanC: beta == 0f, seed);
        var expected = (float[])c.Clone();
        Gemm.SgemmNaive(transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, expected, ldc);
        Gemm.SgemmOn(backend, transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
        AssertClose(expected, c, M, N, K, ldc, alpha, $"{backend} {(transA ? "T" : "N")}{(transB ? "T" : "N")} [{M}×{N}×{K}] alpha={alpha} beta={beta}");
    }
}
