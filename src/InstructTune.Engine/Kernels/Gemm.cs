namespace InstructTune.Engine.Kernels;

/// <summary>
/// Single-precision general matrix product, row-major, in every layout a forward and backward pass needs:
/// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C, where op(X) is X or Xᵀ.
/// A is M×K (lda ≥ K) or, transposed, K×M (lda ≥ M); B is K×N (ldb ≥ N) or, transposed, N×K (ldb ≥ K).
/// beta = 0 overwrites C (NaNs in C do not propagate); beta = 1 accumulates.
/// C must not alias A or B.
/// </summary>
public static partial class Gemm
{
    public static void Sgemm(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, ReadOnlySpan<float> B, int ldb, float beta, Span<float> C, int ldc)
        => SgemmNaive(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);

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
}
