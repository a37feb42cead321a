// A weight matrix [Rows, Cols] (row-major, HF nn.Linear layout: out × in) held as float32 or bfloat16,
// either in place in a memory-mapped checkpoint (zero copy: resident memory = the pages read) or in an array.
using InstructTune.Checkpoints;

namespace InstructTune.Models.Inference;

public sealed class WeightMatrix
{
    private readonly float[]? _f32;
    private readonly ushort[]? _bf16;
    private readonly IntPtr _mapped;

    public int Rows { get; }
    public int Cols { get; }
    public bool IsBf16 { get; }
    public long ByteLength => IsQ8 ? (long)Rows * Cols + (long)Rows * (Cols / 32) * 4 : (long)Rows * Cols * (IsBf16 ? 2 : 4);

    private readonly sbyte[]? _q8;
    private readonly float[]? _q8Scales;

    /// <summary>True for q8_0 weights (ggml's blocks of 32 with one scale each), quantised at load.</summary>
    public bool IsQ8 => _q8 != null;

    private WeightMatrix(int rows, int cols, bool bf16, float[]? f32, ushort[]? b16, IntPtr mapped)
    {
        Rows = rows; Cols = cols; IsBf16 = bf16; _f32 = f32; _bf16 = b16; _mapped = mapped;
    }

    private WeightMatrix(int rows, int cols, sbyte[] q, float[] d)
    {
        Rows = rows; Cols = cols; _q8 = q; _q8Scales = d;
    }

    /// <summary>
    /// The q8_0 version of a float32/bf16 matrix: each row cut into blocks of 32, quantised exactly as ggml (and
    /// our GGUF export) does — scale max|x|/127 stored as half, quants round-half-away — then held as int8 quants
    /// and float32 scales (1.125 bytes per weight). Cols must be a multiple of 32.
    /// </summary>
    public static WeightMatrix QuantizeQ8_0(WeightMatrix w, string name)
    {
        if (w.IsQ8) return w;
        if (w.Cols % Engine.Quantization.Q8_0.BlockSize != 0)
            throw new InvalidDataException($"{name}: q8_0 needs rows of a multiple of {Engine.Quantization.Q8_0.BlockSize} values, this one has {w.Cols}");
        int nb = w.Cols / Engine.Quantization.Q8_0.BlockSize;
        var q = new sbyte[(long)w.Rows * w.Cols];
        var d = new float[(long)w.Rows * nb];
        var row = new float[w.Cols];
        var blocks = new byte[Engine.Quantization.Q8_0.ByteCount(w.Cols)];
        for (int r = 0; r < w.Rows; r++)
        {
            w.RowToF32(r, row);
            Engine.Quantization.Q8_0.Quantize(row, blocks);
            for (int b = 0; b < nb; b++)
            {
                var blk = blocks.AsSpan(b * Engine.Quantization.Q8_0.BlockBytes, Engine.Quantization.Q8_0.BlockBytes);
                d[(long)r * nb + b] = (float)System.Buffers.Binary.BinaryPrimitives.ReadHalfLittleEndian(blk);
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, sbyte>(blk[2..]).CopyTo(q.AsSpan((int)((long)r * w.Cols + b * 32), 32));
            }
        }
        return new WeightMatrix(w.Rows, w.Cols, q, d);
    }

    /// <summary>q8_0 quants [Rows, Cols] (int8).</summary>
    public ReadOnlySpan<sbyte> Q8 => _q8 ?? throw new InvalidOperationException("not a q8_0 weight");

    /// <summary>q8_0 block scales [Rows, Cols/32].</summary>
    public ReadOnlySpan<float> Q8Scales => _q8Scales ?? throw new InvalidOperationException("not a q8_0 weight");

    public static WeightMatrix FromF32(int rows, int cols, float[] data) => new(rows, cols, false, data, null, 0);
    public static WeightMatrix FromBf16(int rows, int cols, ushort[] data) => new(rows, cols, true, null, data, 0);

    /// <summary>Views a checkpoint tensor: F32 and BF16 stay in the mapping; F16 is converted to a float32 array.</summary>
    public static WeightMatrix FromCheckpoint(SafetensorsFile file, TensorInfo t, int rows, int cols)
    {
        if (t.ElementCount != (long)rows * cols)
            throw new InvalidDataException($"{file.Path}: tensor \"{t.Name}\" has shape [{string.Join(",", t.Shape)}], expected [{rows},{cols}]");
        return t.DType switch
        {
            DType.F32 => new(rows, cols, false, null, null, file.Address(t)),
            DType.BF16 => new(rows, cols, true, null, null, file.Address(t)),
            DType.F16 => FromF32(rows, cols, file.ReadF32(t.Name)),
            _ => throw new InvalidDataException($"{file.Path}: tensor \"{t.Name}\" has dtype {t.DType}; weights must be F32, BF16 or F16"),
        };
    }

    public ReadOnlySpan<float> F32 => IsBf16 || IsQ8 ? throw new InvalidOperationException(IsQ8 ? "q8_0 weight" : "bf16 weight")
        : _f32 ?? (ReadOnlySpan<float>)NativeSpan.Create<float>(_mapped, checked(Rows * Cols));

    public ReadOnlySpan<ushort> Bf16 => !IsBf16 ? throw new InvalidOperationException("f32 weight")
        : _bf16 ?? (ReadOnlySpan<ushort>)NativeSpan.Create<ushort>(_mapped, checked(Rows * Cols));

    private ushort[]? _bf16Operand;

    /// <summary>
    /// True when products with many tokens (prefill, scoring) compute in bf16: activations rounded to bf16 and
    /// multiplied by bf16 weights with float32 accumulation (<c>--compute bf16</c>). Decode (fewer than
    /// LinearKernels.GemmMinTokens tokens) keeps its float32 GEMV: it is bound by the bytes of W, not by arithmetic.
    /// </summary>
    public bool ComputeBf16 { get; set; }

    /// <summary>The weights as bf16 for bf16 compute: the matrix itself when it is bf16, else a rounded copy made
    /// on first use (float32 checkpoints then hold both; a bf16 checkpoint costs nothing extra).</summary>
    public ReadOnlySpan<ushort> Bf16Operand
    {
        get
        {
            if (IsBf16) return Bf16;
            var copy = _bf16Operand;
            if (copy == null)
            {
                copy = GC.AllocateUninitializedArray<ushort>(checked(Rows * Cols));
                Engine.Tensors.BFloat16.FromFloat(F32, copy);
                copy = Interlocked.CompareExchange(ref _bf16Operand, copy, null) ?? copy;
            }
            return copy;
        }
    }

    /// <summary>Row r converted to float32 (embedding lookup).</summary>
    public void RowToF32(int r, Span<float> dst)
    {
        if (IsQ8) { var q = Q8.Slice(r * Cols, Cols); var d = Q8Scales.Slice(r * (Cols / 32), Cols / 32); for (int i = 0; i < Cols; i++) dst[i] = d[i / 32] * q[i]; }
        else if (IsBf16) { var src = Bf16.Slice(r * Cols, Cols); for (int i = 0; i < Cols; i++) dst[i] = DTypes.Bf16ToF32(src[i]); }
        else F32.Slice(r * Cols, Cols).CopyTo(dst);
    }

    /// <summary>The whole matrix as float32 (a copy).</summary>
    public float[] ToF32()
    {
        var dst = new float[(long)Rows * Cols];
        if (IsQ8) { for (int r = 0; r < Rows; r++) RowToF32(r, dst.AsSpan(r * Cols, Cols)); return dst; }
        if (IsBf16) { var s = Bf16; for (int i = 0; i < dst.Length; i++) dst[i] = DTypes.Bf16ToF32(s[i]); }
        else F32.CopyTo(dst);
        return dst;
    }
}
