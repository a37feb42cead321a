// bfloat16 storage (the upper 16 bits of an IEEE float32) and conversions exactly as torch does them:
// float → bf16 rounds to nearest, ties to even (c10::BFloat16 round_to_nearest_even); every NaN becomes 0xFFFF,
// which is what torch's tensor conversion (tensor.to(torch.bfloat16), the vectorised path that writes checkpoints)
// produces — torch's 0-d scalar path gives 0x7FC0 instead, both are NaN. bf16 → float is exact (shift by 16).
using System.Numerics.Tensors;
using Tensor = InstructTune.Engine.Tensors.Tensor;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace InstructTune.Engine.Tensors;

public static class BFloat16
{
    /// <summary>The bf16 pattern torch's tensor conversion writes for every NaN input.</summary>
    public const ushort CanonicalNaN = 0xFFFF;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromFloat(float f)
    {
        if (float.IsNaN(f)) return CanonicalNaN;
        uint u = BitConverter.SingleToUInt32Bits(f);
        // Adding 0x7FFF plus the lowest kept bit rounds half to even; overflow into the exponent is the correct
        // carry (max finite rounds to +Inf exactly when torch's does).
        uint rounding = 0x7FFFu + ((u >> 16) & 1u);
        return (ushort)((u + rounding) >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    /// <summary>dst[i] = bf16(src[i]); lengths must match.</summary>
    public static void FromFloat(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (src.Length != dst.Length) throw new ArgumentException($"BFloat16.FromFloat: {src.Length} floats vs {dst.Length} bf16 slots");
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            // The scalar rule on 32 lanes at a time (bf16 compute rounds every activation before each GEMM).
            ref float s = ref MemoryMarshal.GetReference(src);
            ref ushort d = ref MemoryMarshal.GetReference(dst);
            for (; i + 32 <= src.Length; i += 32)
            {
                var lo = Round(Vector512.LoadUnsafe(ref s, (nuint)i));
                var hi = Round(Vector512.LoadUnsafe(ref s, (nuint)(i + 16)));
                Vector512.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        for (; i < src.Length; i++) dst[i] = FromFloat(src[i]);
    }

    /// <summary><see cref="FromFloat(float)"/> on 16 lanes, result in the low 16 bits of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Round(Vector512<float> f)
    {
        var u = f.AsUInt32();
        var r = (u + (Vector512.Create(0x7FFFu) + ((u >> 16) & Vector512<uint>.One))) >> 16;
        var nan = ~Vector512.Equals(f, f).AsUInt32();
        return Vector512.ConditionalSelect(nan, Vector512.Create((uint)CanonicalNaN), r);
    }

    /// <summary>dst[i] = float(src[i]); exact.</summary>
    public static void ToFloat(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (src.Length != dst.Length) throw new ArgumentException($"BFloat16.ToFloat: {src.Length} bf16 vs {dst.Length} float slots");
        var wide = System.Runtime.InteropServices.MemoryMarshal.Cast<float, uint>(dst);
        for (int i = 0; i < src.Length; i++) wide[i] = (uint)src[i] << 16;
    }

    /// <summary>Rounds float32 values through bf16 and back in place (what a bf16 weight store loses).</summary>
    public static void RoundTrip(Span<float> values)
    {
        for (int i = 0; i < values.Length; i++) values[i] = ToFloat(FromFloat(values[i]));
    }
}
