// GEMM packing: copies a block of op(A) or op(B) into the sliver layout the micro-kernel streams, so the
// kernel reads both operands contiguously whatever the caller's layout (NN, NT, TN, TT) and strides.
// Slivers are zero-padded to full MR/NR so edge tiles run the same kernel.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static InstructTune.Engine.Kernels.GemmMicroKernel;

namespace InstructTune.Engine.Kernels;

internal static unsafe class GemmPack
{
    /// <summary>
    /// dst ← op(A)[i0..i0+mc, p0..p0+kc] as ⌈mc/MR⌉ slivers of kc×MR: dst[s·kc·MR + k·MR + i] = op(A)[i0+s·MR+i, p0+k].
    /// op(A)[i, k] is A[i·lda + k], or A[k·lda + i] when transA.
    /// </summary>
    public static void PackA(bool transA, float* A, int lda, int i0, int mc, int p0, int kc, float* dst, int MR)
    {
        for (int s = 0; s < mc; s += MR, dst += kc * MR)
        {
            int mr = Math.Min(MR, mc - s);
            if (transA)
            {
                // Column k of op(A) is row k of A: MR contiguous floats per k.
                float* src = A + (nint)p0 * lda + i0 + s;
                for (int k = 0; k < kc; k++, src += lda)
                {
                    float* d = dst + k * MR;
                    int i = 0;
                    if (mr == 12 && Avx.IsSupported)
                    {
                        Avx.Store(d, Avx.LoadVector256(src));
                        Sse.Store(d + 8, Sse.LoadVector128(src + 8));
                        continue;
                    }
                    for (; i < mr; i++) d[i] = src[i];
                    for (; i < MR; i++) d[i] = 0f;
                }
            }
            else
            {
                // Row i of op(A) is contiguous in k. Groups of 4 full rows go 4 k at a time through 4×4
                // register transposes; the rest (rows past the last group of 4, the k tail) element by element.
                int groups = Sse.IsSupported ? mr / 4 : 0, k4 = groups > 0 ? kc & ~3 : 0;
                float* a0 = A + (nint)(i0 + s) * lda + p0;
                for (int k = 0; k < k4; k += 4)
                    for (int gi = 0; gi < groups; gi++)
                        Transpose4x4(a0 + (nint)(4 * gi) * lda + k, lda, dst + k * MR + 4 * gi, MR);
                for (int i = 0; i < MR; i++)
                {
                    float* d = dst + i;
                    if (i >= mr) { for (int k = 0; k < kc; k++) d[k * MR] = 0f; continue; }
                    float* src = a0 + (nint)i * lda;
                    for (int k = i < 4 * groups ? k4 : 0; k < kc; k++) d[k * MR] = src[k];
                }
            }
        }
    }

    /// <summary>
    /// dst ← op(B)[p0..p0+kc, j0..j0+nc] as ⌈nc/NR⌉ slivers of kc×NR: dst[s·kc·NR + k·NR + j] = op(B)[p0+k, j0+s·NR+j].
    /// op(B)[k, j] is B[k·ldb + j], or B[j·ldb + k] when transB.
    /// </summary>
    public static void PackB(bool transB, float* B, int ldb, int p0, int kc, int j0, int nc, float* dst)
    {
        if (!transB)
        {
            // Row by row of B: each source row is read once, sequentially (B rows are ldb apart, often a page
            // or more, so sliver-by-sliver reading would touch a new page per 64 bytes); each row scatters
            // 16-float pieces into the slivers, which stay in cache.
            int full = nc / NR, rest = nc - full * NR;
            for (int k = 0; k < kc; k++)
            {
                float* src = B + (nint)(p0 + k) * ldb + j0;
                float* d = dst + k * NR;
                for (int s = 0; s < full; s++, src += NR, d += kc * NR)
                {
                    Vector256.Store(Vector256.Load(src), d);
                    Vector256.Store(Vector256.Load(src + 8), d + 8);
                }
                if (rest == 0) continue;
                int j = 0;
                for (; j < rest; j++) d[j] = src[j];
                for (; j < NR; j++) d[j] = 0f;
            }
            return;
        }
        for (int s = 0; s < nc; s += NR, dst += kc * NR)
            PackBTransposedSliver(new F32Rows(B, ldb), j0 + s, Math.Min(NR, nc - s), p0, kc, dst);
    }

    /// <summary>
    /// One sliver of a transposed B operand (stored N×K, as Linear weights are): rows j0..j0+nr of the source,
    /// columns p0..p0+kc, become kc rows of NR: dst[k·NR + j] = src(j0+j, p0+k), zero for j ≥ nr.
    /// Full slivers go 8×8 blocks at a time, converted to float32 and transposed in registers, so each
    /// source row is read sequentially once; TRows is a struct so the JIT specialises the loop per format.
    /// </summary>
    public static void PackBTransposedSliver<TRows>(TRows src, int j0, int nr, int p0, int kc, float* dst)
        where TRows : struct, IBRows
    {
        int k = 0;
        nint ld = src.Stride, r0 = j0 * ld + p0; // flat index of (j0, p0); row j0+t adds t·ld
        if (nr == NR && Avx2.IsSupported && src.CanLoad8(p0))
        {
            nint r8 = r0 + 8 * ld;
            // 16 k at a time: each source row gives a whole 64-byte line per step.
            for (; k + 16 <= kc; k += 16)
            {
                Transpose8x8(src, r0 + k, ld, dst + k * NR);
                Transpose8x8(src, r0 + k + 8, ld, dst + (k + 8) * NR);
                Transpose8x8(src, r8 + k, ld, dst + k * NR + 8);
                Transpose8x8(src, r8 + k + 8, ld, dst + (k + 8) * NR + 8);
            }
            for (; k + 8 <= kc; k += 8)
            {
                Transpose8x8(src, r0 + k, ld, dst + k * NR);
                Transpose8x8(src, r8 + k, ld, dst + k * NR + 8);
            }
        }
        for (; k < kc; k++)
        {
            float* d = dst + k * NR;
            int j = 0;
            for (; j < nr; j++) d[j] = src.Load1(r0 + j * ld + k);
            for (; j < NR; j++) d[j] = 0f;
        }
    }

    /// <summary>dst[c·dstStride + r] = src[r·srcStride + c] for a 4×4 block.</summary>
    private static void Transpose4x4(float* src, nint srcStride, float* dst, nint dstStride)
    {
        var r0 = Sse.LoadVector128(src); var r1 = Sse.LoadVector128(src + srcStride);
        var r2 = Sse.LoadVector128(src + 2 * srcStride); var r3 = Sse.LoadVector128(src + 3 * srcStride);
        var t0 = Sse.UnpackLow(r0, r1);  // a0 b0 a1 b1
        var t1 = Sse.UnpackHigh(r0, r1); // a2 b2 a3 b3
        var t2 = Sse.UnpackLow(r2, r3);  // c0 d0 c1 d1
        var t3 = Sse.UnpackHigh(r2, r3); // c2 d2 c3 d3
        Sse.Store(dst, Sse.MoveLowToHigh(t0, t2));                 // a0 b0 c0 d0
        Sse.Store(dst + dstStride, Sse.MoveHighToLow(t2, t0));     // a1 b1 c1 d1
        Sse.Store(dst + 2 * dstStride, Sse.MoveLowToHigh(t1, t3)); // a2 b2 c2 d2
        Sse.Store(dst + 3 * dstStride, Sse.MoveHighToLow(t3, t1)); // a3 b3 c3 d3
    }

    /// <summary>Rows idx, idx+ld, …, idx+7·ld (8 elements each) of src, transposed into dst (row stride NR).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8<TRows>(TRows src, nint idx, nint ld, float* dst) where TRows : struct, IBRows =>
        Transpose8x8Store(src.Load8(idx), src.Load8(idx + ld), src.Load8(idx + 2 * ld), src.Load8(idx + 3 * ld),
            src.Load8(idx + 4 * ld), src.Load8(idx + 5 * ld), src.Load8(idx + 6 * ld), src.Load8(idx + 7 * ld), dst, NR);

    /// <summary>Writes the transpose of the 8×8 block whose rows are r0..r7: dst[c·dstStride + r] = r_r[c].
    /// (unpack → shuffle → 128-bit permute network).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8Store(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2,
        Vector256<float> r3, Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7,
        float* dst, nint dstStride)
    {
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(u3, u7, 0x31));
    }
}
