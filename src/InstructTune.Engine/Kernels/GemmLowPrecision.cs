// GEMM with a low-precision B operand (bf16 or NF4 weights): C = alpha·op(A)·op(B) + beta·C where B is
// widened to float32 inside packing (no dequantised copy). Inference and QLoRA's frozen base layers use it:
// forward Y = X·Wᵀ (transB = true, W stored [out, in]) and input gradient dX = dY·W (transB = false).
using System.Runtime.InteropServices;
using InstructTune.Engine.Quantization;

namespace InstructTune.Engine.Kernels;

public static unsafe partial class Gemm
{
    [ThreadStatic] private static float[]? nf4Scales;

    /// <summary>
    /// C[M,N] = alpha·op(A)·op(B) + beta·C with B stored as bfloat16 bits (ushort), row-major: N×K (ldb ≥ K)
    /// when transB, else K×N (ldb ≥ N). Always the managed kernel (OpenBLAS has no bf16 sgemm); M ≤ 4 with
    /// transB takes the bandwidth-bound GEMV path.
    /// </summary>
    public static void SgemmBf16B(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, ReadOnlySpan<ushort> B, int ldb, float beta, Span<float> C, int ldc)
    {
        Validate("SgemmBf16B", transA, transB, M, N, K, A.Length, lda, B.Length, ldb, C.Length, ldc);
        if (M == 0 || N == 0) return;
        if (K == 0 || alpha == 0f) { ScaleC(M, N, beta, C, ldc); return; }
        fixed (float* pa = A, pc = C)
        fixed (ushort* pb = B)
        {
            var g = GemmArgs.Create(transA, transB, M, N, K, alpha, pa, lda, pb, ldb, GemmBKind.Bf16, beta, pc, ldc);
            if (GemmGemv.Applies(g)) GemmGemv.Run(g, MaxThreads);
            else GemmBlocked.Run(g, MaxThreads);
        }
    }

    /// <summary>
    /// C[M,N] = alpha·op(A)·op(W) + beta·C with W an NF4 matrix: W is [N×K] when transB (Y = X·Wᵀ), else
    /// [K×N] (dX = dY·W). Blocks of 64 are dequantised as they are packed; the block scales are decoded once
    /// per call (Blocks floats, 1/16 of the fp32 size of W).
    /// </summary>
    public static void SgemmNf4B(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, Nf4Matrix W, float beta, Span<float> C, int ldc)
    {
        int wRows = transB ? N : K, wCols = transB ? K : N;
        if (W.Rows != wRows || W.Cols != wCols)
            throw new ArgumentException($"SgemmNf4B({(transA ? "T" : "N")}{(transB ? "T" : "N")}): op(A) [{M}×{K}], " +
                                        $"W must be [{wRows}×{wCols}] but is [{W.Rows}×{W.Cols}]");
        Validate("SgemmNf4B", transA, transB, M, N, K, A.Length, lda, W.Count, W.Cols, C.Length, ldc);
        if (M == 0 || N == 0) return;
        if (K == 0 || alpha == 0f) { ScaleC(M, N, beta, C, ldc); return; }
        if (nf4Scales == null || nf4Scales.Length < W.Blocks)
            nf4Scales = GC.AllocateUninitializedArray<float>(W.Blocks, pinned: true);
        W.DecodeScales(nf4Scales);
        fixed (float* pa = A, pc = C)
        fixed (byte* pb = W.Codes)
        {
            var g = GemmArgs.Create(transA, transB, M, N, K, alpha, pa, lda, pb, W.Cols, GemmBKind.Nf4, beta, pc, ldc);
            g.BScales = (float*)Marshal.UnsafeAddrOfPinnedArrayElement(nf4Scales, 0);
            GemmBlocked.Run(g, MaxThreads);
        }
    }
}
