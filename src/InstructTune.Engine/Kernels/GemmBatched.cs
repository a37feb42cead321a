// Strided-batched SGEMM for attention-like work: many independent products of the same shape laid out at
// fixed strides (e.g. one per (batch, head)). Small items run whole on one thread each, in parallel, which
// beats splitting every small product across the team.
using InstructTune.Engine.Native;

namespace InstructTune.Engine.Kernels;

public static unsafe partial class Gemm
{
    private static GemmArgs batchJob;
    private static long batchStrideA, batchStrideB, batchStrideC;
    private static int batchCount;

    /// <summary>
    /// For b = 0..batch-1: C_b = alpha·op(A_b)·op(B_b) + beta·C_b, where X_b starts at b·strideX in X
    /// (layouts and leading dimensions as in <see cref="Sgemm"/>). Items must not overlap in C.
    /// </summary>
    public static void SgemmStridedBatched(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, long strideA, ReadOnlySpan<float> B, int ldb, long strideB,
        float beta, Span<float> C, int ldc, long strideC, int batch)
    {
        if (batch < 0 || strideA < 0 || strideB < 0 || strideC < 0)
            throw new ArgumentException($"SgemmStridedBatched: batch={batch}, strides ({strideA}, {strideB}, {strideC}) must be ≥ 0");
        if (batch == 0) return;
        long last = batch - 1;
        // Validate the last item against what remains after its offset (offsets grow with b).
        Validate("SgemmStridedBatched", transA, transB, M, N, K, A.Length - last * strideA, lda,
            B.Length - last * strideB, ldb, C.Length - last * strideC, ldc);
        Validate("SgemmStridedBatched", transA, transB, M, N, K, A.Length, lda, B.Length, ldb, C.Length, ldc);
        if (M == 0 || N == 0) return;
        if (K == 0 || alpha == 0f)
        {
            for (long b = 0; b < batch; b++) ScaleC(M, N, beta, C[(int)(b * strideC)..], ldc);
            return;
        }
        fixed (float* pa = A, pb = B, pc = C)
        {
            if (Backend == GemmBackend.OpenBlas)
            {
                for (long b = 0; b < batch; b++)
                    OpenBlas.Sgemm(transA, transB, M, N, K, alpha, pa + b * strideA, lda, pb + b * strideB, ldb,
                        beta, pc + b * strideC, ldc);
                return;
            }
            var g = GemmArgs.Create(transA, transB, M, N, K, alpha, pa, lda, pb, ldb, GemmBKind.F32, beta, pc, ldc);
            int threads = Math.Min(MaxThreads, batch);
            long work = (long)M * N * K * batch;
            if (threads > 1 && work >= GemmBlocked.ParallelThreshold && GemmWorkers.TryEnter())
            {
                try
                {
                    batchJob = g; batchStrideA = strideA; batchStrideB = strideB; batchStrideC = strideC; batchCount = batch;
                    GemmWorkers.Run(&BatchPart, threads);
                }
                finally { GemmWorkers.Exit(); }
                return;
            }
            // Fewer items than threads: split each item across the team instead.
            bool splitItems = batch < MaxThreads;
            for (long b = 0; b < batch; b++)
            {
                var item = g;
                item.A += b * strideA; item.B = (float*)item.B + b * strideB; item.C += b * strideC;
                if (splitItems) GemmBlocked.Run(item, MaxThreads);
                else GemmBlocked.Serial(item, 0, M, 0, N);
            }
        }
    }

    private static void BatchPart(int p, int n)
    {
        long lo = (long)batchCount * p / n, hi = (long)batchCount * (p + 1) / n;
        for (long b = lo; b < hi; b++) Item(batchJob, b, batchStrideA, batchStrideB, batchStrideC);
    }

    private static void Item(GemmArgs g, long b, long strideA, long strideB, long strideC)
    {
        // g is a copy: offsetting it does not touch the shared job.
        g.A += b * strideA; g.B = (float*)g.B + b * strideB; g.C += b * strideC;
        GemmBlocked.Serial(g, 0, g.M, 0, g.N);
    }
}
