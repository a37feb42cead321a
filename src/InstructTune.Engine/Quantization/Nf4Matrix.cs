// A frozen weight matrix stored in NF4 with double-quantised block scales (≈ 0.516 bytes per weight),
// the base-layer storage of QLoRA. The GEMM reads it directly (Gemm.SgemmNf4B), dequantising inside packing.
namespace InstructTune.Engine.Quantization;

/// <summary>
/// A Rows×Cols float32 matrix (row-major, e.g. a Linear weight [out, in]) quantised to NF4 in flat blocks of
/// 64, with the per-block absmax double-quantised to 8 bits in blocks of 256 (see <see cref="Nf4"/>).
/// Immutable after construction.
/// </summary>
public sealed class Nf4Matrix
{
    public int Rows { get; }
    public int Cols { get; }

    /// <summary>Two 4-bit codes per byte, the even flat index in the high nibble; length ⌈Rows·Cols/2⌉.</summary>
    public byte[] Codes { get; }

    /// <summary>One 8-bit dynamic-map index per block of 64 weights.</summary>
    public byte[] QuantizedScales { get; }

    /// <summary>One float32 absmax per block of 256 quantised scales.</summary>
    public float[] ScaleAbsmax { get; }

    /// <summary>The mean of the fp32 block absmaxes, subtracted before the scales were quantised.</summary>
    public float ScaleOffset { get; }

    public long Count => (long)Rows * Cols;
    public int Blocks => (int)((Count + Nf4.BlockSize - 1) / Nf4.BlockSize);

    /// <summary>Bytes held for the weights (codes, quantised scales, second-level absmaxes, offset).</summary>
    public long StorageBytes => Codes.Length + QuantizedScales.Length + 4L * ScaleAbsmax.Length + 4;

    public Nf4Matrix(int rows, int cols, byte[] codes, byte[] quantizedScales, float[] scaleAbsmax, float scaleOffset)
    {
        if (rows <= 0 || cols <= 0) throw new ArgumentException($"Nf4Matrix: shape [{rows}×{cols}] must be positive");
        Rows = rows; Cols = cols;
        int blocks = Blocks;
        if (codes.Length != (Count + 1) / 2)
            throw new ArgumentException($"Nf4Matrix [{rows}×{cols}]: codes has {codes.Length} bytes, expected {(Count + 1) / 2}");
        if (quantizedScales.Length != blocks)
            throw new ArgumentException($"Nf4Matrix [{rows}×{cols}]: quantizedScales has {quantizedScales.Length}, expected {blocks}");
        int blocks2 = (blocks + Nf4.ScaleBlockSize - 1) / Nf4.ScaleBlockSize;
        if (scaleAbsmax.Length != blocks2)
            throw new ArgumentException($"Nf4Matrix [{rows}×{cols}]: scaleAbsmax has {scaleAbsmax.Length}, expected {blocks2}");
        Codes = codes; QuantizedScales = quantizedScales; ScaleAbsmax = scaleAbsmax; ScaleOffset = scaleOffset;
    }

    /// <summary>Quantises w (rows×cols, row-major) to NF4 with double-quantised scales.</summary>
    public static Nf4Matrix Quantize(ReadOnlySpan<float> w, int rows, int cols)
    {
        long n = (long)rows * cols;
        if (rows <= 0 || cols <= 0 || w.Length < n)
            throw new ArgumentException($"Nf4Matrix.Quantize: shape [{rows}×{cols}] needs {n} values, got {w.Length}");
        int blocks = (int)((n + Nf4.BlockSize - 1) / Nf4.BlockSize);
        var codes = new byte[(n + 1) / 2];
        var absmax = new float[blocks];
        for (int b = 0; b < blocks; b++)
        {
            int start = b * Nf4.BlockSize, end = (int)Math.Min(n, start + Nf4.BlockSize);
            float m = 0f;
            for (int i = start; i < end; i++) m = Math.Max(m, Math.Abs(w[i]));
            absmax[b] = m;
            // bitsandbytes multiplies by the reciprocal; an all-zero block maps to code 7 (exact 0).
            float inv = m == 0f ? 0f : 1f / m;
            for (int i = start; i < end; i++)
            {
                int q = Nf4.QuantizeValue(w[i] * inv);
                codes[i >> 1] |= (byte)((i & 1) == 0 ? q << 4 : q);
            }
        }
        var (qs, absmax2, offset) = QuantizeScales(absmax);
        return new Nf4Matrix(rows, cols, codes, qs, absmax2, offset);
    }

    /// <summary>Second-level quantisation of the block absmaxes (bitsandbytes compress_statistics).</summary>
    private static (byte[] Q, float[] Absmax2, float Offset) QuantizeScales(float[] absmax)
    {
        double sum = 0;
        foreach (var a in absmax) sum += a;
        float offset = (float)(sum / absmax.Length);
        int blocks2 = (absmax.Length + Nf4.ScaleBlockSize - 1) / Nf4.ScaleBlockSize;
        var q = new byte[absmax.Length];
        var absmax2 = new float[blocks2];
        for (int b = 0; b < blocks2; b++)
        {
            int start = b * Nf4.ScaleBlockSize, end = Math.Min(absmax.Length, start + Nf4.ScaleBlockSize);
            float m = 0f;
            for (int i = start; i < end; i++) m = Math.Max(m, Math.Abs(absmax[i] - offset));
            absmax2[b] = m;
            for (int i = start; i < end; i++)
                q[i] = (byte)Nf4.QuantizeDynamic(m == 0f ? 0f : (absmax[i] - offset) / m);
        }
        return (q, absmax2, offset);
    }

    /// <summary>scales[b] = dynamic[q[b]]·absmax2[b/256] + offset: the float32 absmax of each block of 64.</summary>
    public void DecodeScales(Span<float> scales)
    {
        if (scales.Length < Blocks) throw new ArgumentException($"Nf4Matrix.DecodeScales: need {Blocks} floats, got {scales.Length}");
        var map = Nf4.DynamicMap;
        for (int b = 0; b < Blocks; b++)
            scales[b] = map[QuantizedScales[b]] * ScaleAbsmax[b / Nf4.ScaleBlockSize] + ScaleOffset;
    }

    /// <summary>w[i] = code[q_i] · scale[i/64] for the whole matrix (the reference the fused GEMM must match).</summary>
    public void Dequantize(Span<float> w)
    {
        if (w.Length < Count) throw new ArgumentException($"Nf4Matrix.Dequantize [{Rows}×{Cols}]: need {Count} floats, got {w.Length}");
        var scales = new float[Blocks];
        DecodeScales(scales);
        var code = Nf4.CodeTable;
        for (long i = 0; i < Count; i++)
        {
            int b = Codes[i >> 1];
            w[(int)i] = code[(i & 1) == 0 ? b >> 4 : b & 15] * scales[i / Nf4.BlockSize];
        }
    }
}
