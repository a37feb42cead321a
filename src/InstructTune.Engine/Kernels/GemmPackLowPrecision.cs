// Packing for B operands stored in a narrower type (bf16, NF4): each element is widened to float32 as it
// is copied into the packed sliver, so the product never materialises a dequantised copy of the weights;
// only the KC×NC block in the pack buffer exists in float32 at any time.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using InstructTune.Engine.Quantization;
using static InstructTune.Engine.Kernels.GemmMicroKernel;

namespace InstructTune.Engine.Kernels;

/// <summary>Reads a row-major stored matrix (any element format) as float32: one value or 8 consecutive
/// values of one stored row, addressed by flat index row·Stride + col (callers hoist the row part out of
/// their loops). Implemented by structs so generic packers specialise per format.</summary>
internal unsafe interface IBRows
{
    /// <summary>Elements between consecutive stored rows (the leading dimension).</summary>
    nint Stride { get; }

    /// <summary>Element at flat index idx, as float32.</summary>
    float Load1(nint idx);

    /// <summary>Elements idx..idx+8 of one row; only called when <see cref="CanLoad8"/> said yes for the block.</summary>
    Vector256<float> Load8(nint idx);

    /// <summary>Whether 8-wide loads are valid for blocks starting at column col0 (alignment of the format).</summary>
    bool CanLoad8(int col0);
}

internal readonly unsafe struct F32Rows(float* p, int ld) : IBRows
{
    public nint Stride => ld;
    public float Load1(nint idx) => p[idx];
    public Vector256<float> Load8(nint idx) => Avx.LoadVector256(p + idx);
    public bool CanLoad8(int col0) => true;
}

/// <summary>bfloat16 stored as ushort: the float32 with the same top 16 bits (exact widening).</summary>
internal readonly unsafe struct Bf16Rows(ushort* p, int ld) : IBRows
{
    public nint Stride => ld;
    public float Load1(nint idx) => BitConverter.Int32BitsToSingle(p[idx] << 16);

    public Vector256<float> Load8(nint idx)
    {
        var h = Sse2.LoadVector128(p + idx);
        return Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(h), 16).AsSingle();
    }

    public bool CanLoad8(int col0) => true;
}

/// <summary>
/// NF4 codes (two per byte, the even flat index in the high nibble, as bitsandbytes packs them) times the
/// float32 scale of their block of 64; ld is the stored row length (flat index = row·ld + col).
/// </summary>
internal readonly unsafe struct Nf4Rows(byte* codes, float* scales, int ld) : IBRows
{
    public nint Stride => ld;

    public float Load1(nint idx)
    {
        int b = codes[idx >> 1];
        int q = (idx & 1) == 0 ? b >> 4 : b & 15;
        return Nf4.Code[q] * scales[idx / Nf4.BlockSize];
    }

    public Vector256<float> Load8(nint idx)
    {
        // 4 bytes → [b0 b0 b1 b1 b2 b2 b3 b3] → shift (4,0,…) and mask → 8 codes, high nibble first.
        var bytes = Vector128.CreateScalar(*(uint*)(codes + (idx >> 1))).AsByte();
        var dup = Avx2.PermuteVar8x32(Avx2.ConvertToVector256Int32(bytes), Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3));
        var q = Avx2.ShiftRightLogicalVariable(dup.AsUInt32(), Vector256.Create(4u, 0, 4, 0, 4, 0, 4, 0)).AsInt32()
                & Vector256.Create(15);
        // 16-entry table lookup as two 8-entry permutes selected by bit 3 of the code.
        var lo = Avx2.PermuteVar8x32(Nf4Lo, q);
        var hi = Avx2.PermuteVar8x32(Nf4Hi, q);
        var v = Avx.BlendVariable(lo, hi, Avx2.ShiftLeftLogical(q, 28).AsSingle());
        return v * Vector256.Create(scales[idx / Nf4.BlockSize]);
    }

    /// <summary>8 consecutive elements share one scale and start on a byte when the flat index of the
    /// first is a multiple of 8: true for every 8-aligned column when ld is a multiple of 8.</summary>
    public bool CanLoad8(int col0) => ld % 8 == 0 && col0 % 8 == 0;

    private static readonly Vector256<float> Nf4Lo = Vector256.Create(Nf4.Code[..8]);
    private static readonly Vector256<float> Nf4Hi = Vector256.Create(Nf4.Code[8..]);
}

internal static unsafe class GemmPackLowPrecision
{
    /// <summary>Packs op(B)[pc..pc+kc, jc..jc+nc] from a bf16 or NF4 stored B (see <see cref="GemmPack.PackB"/>).</summary>
    public static void PackB(in GemmArgs g, int pc, int kc, int jc, int nc, float* dst)
    {
        if (g.BKind == GemmBKind.Bf16) Pack(new Bf16Rows((ushort*)g.B, g.Ldb), g.TransB, pc, kc, jc, nc, dst);
        else Pack(new Nf4Rows((byte*)g.B, g.BScales, g.Ldb), g.TransB, pc, kc, jc, nc, dst);
    }

    private static void Pack<TRows>(TRows src, bool transB, int pc, int kc, int jc, int nc, float* dst)
        where TRows : struct, IBRows
    {
        if (transB)
        {
            for (int s = 0; s < nc; s += NR, dst += kc * NR)
                GemmPack.PackBTransposedSliver(src, jc + s, Math.Min(NR, nc - s), pc, kc, dst);
            return;
        }
        // op(B) = stored B: row by row as in GemmPack.PackB, each stored row pc+k read once, sequentially,
        // and cut into the k-th rows of the slivers.
        bool wide = Avx2.IsSupported && src.CanLoad8(jc);
        int full = nc / NR;
        for (int k = 0; k < kc; k++)
        {
            float* d = dst + k * NR;
            nint row = (pc + k) * src.Stride + jc;
            int s = 0;
            for (; s < full; s++, d += kc * NR, row += NR)
            {
                if (wide)
                {
                    Avx.Store(d, src.Load8(row));
                    Avx.Store(d + 8, src.Load8(row + 8));
                }
                else
                    for (int j = 0; j < NR; j++) d[j] = src.Load1(row + j);
            }
            if (full * NR == nc) continue;
            int nr = nc - full * NR, jr = 0;
            for (; jr < nr; jr++) d[jr] = src.Load1(row + jr);
            for (; jr < NR; jr++) d[jr] = 0f;
        }
    }
}
