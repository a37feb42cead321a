// Element types of safetensors files, with their byte sizes and the conversions to float32 we compute in.
using System.Runtime.CompilerServices;

namespace InstructTune.Checkpoints;

public enum DType { F32, BF16, F16, F64, I64, I32, I16, I8, U8, BOOL }

public static class DTypes
{
    /// <summary>Parses a safetensors dtype string ("F32", "BF16", …); null when unknown.</summary>
    public static DType? Parse(string s) => s switch
    {
        "F32" => DType.F32, "BF16" => DType.BF16, "F16" => DType.F16, "F64" => DType.F64,
        "I64" => DType.I64, "I32" => DType.I32, "I16" => DType.I16, "I8" => DType.I8,
        "U8" => DType.U8, "BOOL" => DType.BOOL, _ => null,
    };

    public static string Name(this DType t) => t.ToString();

    public static int Size(this DType t) => t switch
    {
        DType.F64 or DType.I64 => 8,
        DType.F32 or DType.I32 => 4,
        DType.BF16 or DType.F16 or DType.I16 => 2,
        _ => 1,
    };

    /// <summary>Whether a tensor of this type can be loaded as float weights (the others are read-only raw bytes).</summary>
    public static bool IsFloat(this DType t) => t is DType.F32 or DType.BF16 or DType.F16;

    /// <summary>bf16 → f32 is exact: the bf16 bits are the high half of the f32 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Bf16ToF32(ushort b) => BitConverter.Int32BitsToSingle(b << 16);

    /// <summary>f32 → bf16 rounding to nearest, ties to even, NaN kept quiet — the same bits torch produces.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort F32ToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7FFFFFFF) > 0x7F800000) return (ushort)((u >> 16) | 0x40); // NaN
        uint rounding = 0x7FFF + ((u >> 16) & 1);
        return (ushort)((u + rounding) >> 16);
    }

    /// <summary>Converts little-endian raw elements of a float dtype into float32.</summary>
    public static void ToF32(DType t, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (t)
        {
            case DType.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case DType.BF16:
                var b = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(src);
                for (int i = 0; i < b.Length; i++) dst[i] = Bf16ToF32(b[i]);
                break;
            case DType.F16:
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < h.Length; i++) dst[i] = (float)h[i];
                break;
            default:
                throw new InvalidDataException($"dtype {t} cannot be converted to float32");
        }
    }

    /// <summary>Encodes float32 values as raw little-endian elements of dtype <paramref name="t"/>.</summary>
    public static byte[] FromF32(DType t, ReadOnlySpan<float> src)
    {
        var bytes = new byte[src.Length * t.Size()];
        switch (t)
        {
            case DType.F32:
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(src).CopyTo(bytes);
                break;
            case DType.BF16:
                var b = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
                for (int i = 0; i < src.Length; i++) b[i] = F32ToBf16(src[i]);
                break;
            case DType.F16:
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(bytes.AsSpan());
                for (int i = 0; i < src.Length; i++) h[i] = (Half)src[i];
                break;
            default:
                throw new ArgumentException($"cannot encode float32 as {t}");
        }
        return bytes;
    }
}
