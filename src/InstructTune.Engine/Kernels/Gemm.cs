// Public GEMM entry points. Sgemm validates, pins and dispatches to OpenBLAS or the managed blocked kernel
// (GemmBlocked + GemmPack + GemmMicroKernel); SgemmNaive is the definition every fast path is tested against.
using System.Runtime.CompilerServices;
using InstructTune.Engine.Native;

[assembly: InternalsVisibleTo("InstructTune.Engine.Tests")]
[assembly: InternalsVisibleTo("InstructTune.Bench")]

namespace InstructTune.Engine.Kernels;

/// <summary>
/// Single-precision general matrix product, row-major, in every layout a forward and backward pass needs:
/// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C, where op(X) is X or Xᵀ.
/// A is M×K (lda ≥ K) or, transposed, K×M (lda ≥ M); B is K×N (ldb ≥ N) or, transposed, N×K (ldb ≥ K).
/// beta = 0 overwrites C (NaNs in C do not propagate); beta = 1 accumulates.
/// C must not alias A or B.
/// </summary>
public static unsafe partial class Gemm
{
    public static void Sgemm(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, ReadOnlySpan<float> B, int ldb, float beta, Span<float> C, int ldc)
    {
        var backend = Backend;
        // Decode-shaped X·Wᵀ (M ≤ 4): the managed GEMV streams W at about twice the rate of OpenBLAS's sgemm
        // (docs/PERFORMANCE.md), so auto keeps those managed; a forced OpenBLAS choice is honoured as is.
        if (backend == GemmBackend.OpenBlas && !openBlasForced && M <= GemmGemv.MaxRows && transB && !transA && GemmMicroKernel.UseAvx2)
            backend = GemmBackend.Managed;
        SgemmOn(backend, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }

    /// <summary>
    /// <see cref="Sgemm"/> for callers that interleave GEMMs with their own parallel work on the engine's worker
    /// team (inference: attention and GEMVs between the prefill GEMMs). OpenBLAS's threads spin for a while after
    /// each call and then compete with that work for the cores (S prefill measured 27 ms with OpenBLAS against
    /// 16 ms managed), so this stays managed unless OpenBLAS was asked for by name.
    /// </summary>
    public static void SgemmSharedTeam(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, ReadOnlySpan<float> B, int ldb, float beta, Span<float> C, int ldc)
    {
        var backend = Backend == GemmBackend.OpenBlas && openBlasForced ? GemmBackend.OpenBlas : GemmBackend.Managed;
        SgemmOn(backend, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }

    /// <summary><see cref="Sgemm"/> on a named backend regardless of <see cref="Backend"/> (benchmarks and
    /// tests compare both in one process). Auto means the current <see cref="Backend"/>.</summary>
    public static void SgemmOn(GemmBackend backend, bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, ReadOnlySpan<float> B, int ldb, float beta, Span<float> C, int ldc)
    {
        if (backend == GemmBackend.Auto) backend = Backend;
        Validate("Sgemm", transA, transB, M, N, K, A.Length, lda, B.Length, ldb, C.Length, ldc);
        if (M == 0 || N == 0) return;
        if (K == 0 || alpha == 0f) { ScaleC(M, N, beta, C, ldc); return; }
        fixed (float* pa = A, pb = B, pc = C)
        {
            if (backend == GemmBackend.OpenBlas)
            {
                OpenBlas.Sgemm(transA, transB, M, N, K, alpha, pa, lda, pb, ldb, beta, pc, ldc);
                return;
            }
            var g = GemmArgs.Create(transA, transB, M, N, K, alpha, pa, lda, pb, ldb, GemmBKind.F32, beta, pc, ldc);
            if (GemmGemv.Applies(g)) GemmGemv.Run(g, MaxThreads);
            else GemmBlocked.Run(g, MaxThreads);
        }
    }

    /// <summary>The definition: a triple loop in double precision. Test oracle for every fast path.</summary>
    public static void SgemmNaive(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, ReadOnlySpan<float> B, int ldb, float beta, Span<float> C, int ldc)
    {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
            {
                double acc = 0;
                for (int k = 0; k < K; k++)
                {
                    float a = transA ? A[k * lda + i] : A[i * lda + k];
                    float b = transB ? B[j * ldb + k] : B[k * ldb + j];
                    acc += (double)a * b;
                }
                float prev = beta == 0 ? 0f : beta * C[i * ldc + j];
                C[i * ldc + j] = (float)(alpha * acc) + prev;
            }
    }

    /// <summary>C = beta·C (beta = 0 writes zeros), for the K = 0 and alpha = 0 cases.</summary>
    private static void ScaleC(int M, int N, float beta, Span<float> C, int ldc)
    {
        for (int i = 0; i < M; i++)
        {
            var row = C.Slice(i * ldc, N);
            if (beta == 0f) row.Clear();
            else if (beta != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    /// <summary>Checks dimensions, leading dimensions and buffer lengths; the message names the op, the
    /// layout and every shape involved.</summary>
    internal static void Validate(string op, bool transA, bool transB, int M, int N, int K,
        long aLen, int lda, long bLen, int ldb, long cLen, int ldc)
    {
        string Shapes() => $"{op}({(transA ? "T" : "N")}{(transB ? "T" : "N")}): op(A) [{M}×{K}] lda={lda}, " +
                           $"op(B) [{K}×{N}] ldb={ldb}, C [{M}×{N}] ldc={ldc}";
        if (M < 0 || N < 0 || K < 0) throw new ArgumentException($"{Shapes()}: negative dimension");
        int aCols = transA ? M : K, aRows = transA ? K : M;
        int bCols = transB ? K : N, bRows = transB ? N : K;
        if (lda < Math.Max(1, aCols)) throw new ArgumentException($"{Shapes()}: lda must be ≥ {Math.Max(1, aCols)}");
        if (ldb < Math.Max(1, bCols)) throw new ArgumentException($"{Shapes()}: ldb must be ≥ {Math.Max(1, bCols)}");
        if (ldc < Math.Max(1, N)) throw new ArgumentException($"{Shapes()}: ldc must be ≥ {Math.Max(1, N)}");
        if (M == 0 || N == 0) return;
        long needA = aRows == 0 || aCols == 0 ? 0 : (long)(aRows - 1) * lda + aCols;
        long needB = bRows == 0 || bCols == 0 ? 0 : (long)(bRows - 1) * ldb + bCols;
        long needC = (long)(M - 1) * ldc + N;
        if (aLen < needA) throw new ArgumentException($"{Shapes()}: A has {aLen} elements, needs {needA}");
        if (bLen < needB) throw new ArgumentException($"{Shapes()}: B has {bLen} elements, needs {needB}");
        if (cLen < needC) throw new ArgumentException($"{Shapes()}: C has {cLen} elements, needs {needC}");
    }
}
