// Q8_0, ggml's 8-bit block format (ggml-common.h block_q8_0; GGUF tensor type 8): each row is cut into blocks of
// 32 consecutive values; a block stores its scale d = max|x| / 127 as IEEE half (2 bytes, little-endian) followed
// by 32 signed bytes q = round(x / d), so a block is 34 bytes and x ≈ d·q. As in ggml's reference quantiser, the
// quants are computed with the float32 scale and only the stored scale is rounded to half; round-half-away-from-
// zero (C roundf). An all-zero block has d = 0 and q = 0. Used by GGUF export and by q8_0 inference.
namespace InstructTune.Engine.Quantization;

public static class Q8_0
{
    /// <summary>Values per block.</summary>
    public const int BlockSize = 32;

    /// <summary>Bytes per block: a half scale and 32 int8 quants.</summary>
    public const int BlockBytes = 2 + BlockSize;

    /// <summary>Bytes of <paramref name="n"/> values (a multiple of 32).</summary>
    public static long ByteCount(long n)
    {
        if (n % BlockSize != 0) throw new ArgumentException($"q8_0 needs a multiple of {BlockSize} values (got {n})");
        return n / BlockSize * BlockBytes;
    }

    /// <summary>Quantises x (length a multiple of 32) into dst (ByteCount(x.Length) bytes).</summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> dst)
    {
        long need = ByteCount(x.Length);
        if (dst.Length < need) throw new ArgumentException($"q8_0: destination holds {dst.Length} bytes, {need} needed");
        for (int b = 0; b < x.Length / BlockSize; b++)
        {
            var block = x.Slice(b * BlockSize, BlockSize);
            var o = dst.Slice(b * BlockBytes, BlockBytes);
            float amax = 0;
            foreach (float v in block) amax = Math.Max(amax, Math.Abs(v));
            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            System.Buffers.Binary.BinaryPrimitives.WriteHalfLittleEndian(o, (Half)d);
            for (int j = 0; j < BlockSize; j++)
                o[2 + j] = unchecked((byte)(sbyte)MathF.Round(block[j] * id, MidpointRounding.AwayFromZero));
        }
    }

    /// <summary>x = d·q for every block of src into dst (32 values per 34 bytes).</summary>
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst)
    {
        if (src.Length < ByteCount(dst.Length)) throw new ArgumentException($"q8_0: source holds {src.Length} bytes, {ByteCount(dst.Length)} needed");
        for (int b = 0; b < dst.Length / BlockSize; b++)
        {
            var o = src.Slice(b * BlockBytes, BlockBytes);
            float d = (float)System.Buffers.Binary.BinaryPrimitives.ReadHalfLittleEndian(o);
            for (int j = 0; j < BlockSize; j++) dst[b * BlockSize + j] = d * (sbyte)o[2 + j];
        }
    }
}
