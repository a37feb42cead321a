using InstructTune.Engine.Kernels;

namespace InstructTune.Engine.Tests;

/// <summary>Operand generation and comparison for the GEMM tests (oracle: Gemm.SgemmNaive).</summary>
internal static class GemmTestSupport
{
    /// <summary>Awkward (M, N, K): ones, primes around the tile sizes 6/16, around KC = 256 and MC = 144,
    /// N beyond NC = 3072, and shapes large enough to take the multi-threaded split in M or in N.</summary>
    public static readonly (int M, int N, int K)[] Shapes =
    [
        (1, 1, 1), (7, 7, 7), (1, 1000, 7), (63, 65, 257), (65, 63, 1), (257, 1, 65), (6, 16, 256),
        (7, 17, 263), (150, 40, 513), (5, 3100, 3), (257, 300, 65), (1000, 65, 63), (2, 1000, 257),
        (20, 4100, 40), (4100, 20, 40), // long split dimension: several chunks taken dynamically
    ];

    public static float[] Random(int n, int seed, float lo = -1f, float hi = 1f)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng.NextSingle();
        return x;
    }

    /// <summary>
    /// Operands for op(A)[M×K]·op(B)[K×N] with leading dimensions larger than minimal (by 3, so rows are not
    /// vector-aligned), and C prefilled either with NaN (for beta = 0) or with random values.
    /// </summary>
    public static (float[] A, int Lda, float[] B, int Ldb, float[] C, int Ldc) Operands(
        bool transA, bool transB, int M, int N, int K, bool nanC, int seed)
    {
        int lda = (transA ? M : K) + 3, ldb = (transB ? K : N) + 3, ldc = N + 3;
        var a = Random((transA ? K : M) * lda, seed);
        var b = Random((transB ? N : K) * ldb, seed + 1);
        var c = nanC ? Enumerable.Repeat(float.NaN, M * ldc).ToArray() : Random(M * ldc, seed + 2);
        return (a, lda, b, ldb, c, ldc);
    }

    /// <summary>
    /// Every C element within a tolerance that grows with K (float32 accumulation error of a K-term dot of
    /// values in [-1, 1], times |alpha|, plus the beta term's rounding); the padding between rows untouched.
    /// </summary>
    public static void AssertClose(float[] expected, float[] actual, int M, int N, int K, int ldc, float alpha, string what)
    {
        float tol = 4e-7f * (K + 8) * Math.Max(1f, Math.Abs(alpha)) + 1e-6f;
        for (int i = 0; i < M; i++)
        {
            for (int j = 0; j < N; j++)
            {
                float e = expected[i * ldc + j], a = actual[i * ldc + j];
                if (!(Math.Abs(e - a) <= tol * Math.Max(1f, Math.Abs(e) / K)))
                    Assert.Fail($"{what}: C[{i},{j}] = {a}, expected {e} (tol {tol})");
            }
            for (int j = N; j < ldc && i * ldc + j < expected.Length; j++)
                if (!expected[i * ldc + j].Equals(actual[i * ldc + j]))
                    Assert.Fail($"{what}: padding C[{i},{j}] was written");
        }
    }

    public static IEnumerable<(bool TransA, bool TransB)> Layouts() =>
        [(false, false), (false, true), (true, false), (true, true)];
}
