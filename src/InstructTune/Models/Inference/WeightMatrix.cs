// A weight matrix [Rows, Cols] (row-major, HF nn.Linear layout: out × in) held as float32, bfloat16 or q8_0,
// either in place in a memory-mapped checkpoint (zero copy: resident memory = the pages read) or in an array.
// This is storage only: the products run in the engine (Engine/Kernels/LinearKernel.cs) on the WeightView that
// Pin() hands out; InferenceLinear binds the two.
using System.Buffers;
using InstructTune.Checkpoints;
using InstructTune.Engine.Kernels;

namespace InstructTune.Models.Inference;

public sealed class WeightMatrix
{
    private readonly float[]? _f32;
    private readonly ushort[]? _bf16;
    private readonly byte[]? _q8;
    private readonly IntPtr _mapped;

    public int Rows { get; }
    public int Cols { get; }
    public bool IsBf16 { get; }

    /// <summary>True for q8_0 weights: ggml's blocks of 32 (a half scale, then 32 int8 quants; 34 bytes), as GGUF
    /// and `itune convert --dtype q8_0` store them, read in place from the mapping or quantised at load.</summary>
    public bool IsQ8 { get; }

    public long ByteLength => IsQ8 ? (long)Rows * (Cols / Q8Block) * Q8BlockBytes : (long)Rows * Cols * (IsBf16 ? 2 : 4);

    private const int Q8Block = Engine.Quantization.Q8_0.BlockSize, Q8BlockBytes = Engine.Quantization.Q8_0.BlockBytes;

    private WeightMatrix(int rows, int cols, bool bf16, float[]? f32, ushort[]? b16, IntPtr mapped, bool q8 = false, byte[]? q8Blocks = null)
    {
        Rows = rows; Cols = cols; IsBf16 = bf16; _f32 = f32; _bf16 = b16; _mapped = mapped; IsQ8 = q8; _q8 = q8Blocks;
    }

    /// <summary>
    /// The q8_0 version of a float32/bf16 matrix: each row cut into blocks of 32 and quantised exactly as ggml (and
    /// our GGUF export) does — scale max|x|/127 stored as half, quants round-half-away — into ggml's block layout
    /// (1.0625 bytes per weight). Cols must be a multiple of 32.
    /// </summary>
    public static WeightMatrix QuantizeQ8_0(WeightMatrix w, string name)
    {
        if (w.IsQ8) return w;
        if (w.Cols % Q8Block != 0)
            throw new InvalidDataException($"{name}: q8_0 needs rows of a multiple of {Q8Block} values, this one has {w.Cols}");
        long rowBytes = w.Cols / Q8Block * Q8BlockBytes;
        var blocks = GC.AllocateUninitializedArray<byte>(checked((int)(w.Rows * rowBytes)));
        var row = new float[w.Cols];
        for (int r = 0; r < w.Rows; r++)
        {
            w.RowToF32(r, row);
            Engine.Quantization.Q8_0.Quantize(row, blocks.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        return new WeightMatrix(w.Rows, w.Cols, false, null, null, 0, q8: true, q8Blocks: blocks);
    }

    /// <summary>q8_0 blocks [Rows, Cols/32 × 34 bytes].</summary>
    public ReadOnlySpan<byte> Q8Blocks => !IsQ8 ? throw new InvalidOperationException("not a q8_0 weight")
        : _q8 ?? (ReadOnlySpan<byte>)NativeSpan.Create<byte>(_mapped, checked((int)ByteLength));

    /// <summary>Name of the safetensors metadata key that marks a file's U8 weight tensors as q8_0 blocks.</summary>
    public const string Q8MetadataKey = "instructtune.q8_0";

    /// <summary>
    /// Drops the resident pages of a memory-mapped matrix (Linux madvise MADV_DONTNEED; the file stays mapped and a
    /// later read pages it back in). Called after quantising at load, so the float32 pages no longer count in the
    /// process's memory. No-op for arrays and off Linux.
    /// </summary>
    public void ReleaseMappedPages()
    {
        if (_mapped == 0 || !OperatingSystem.IsLinux()) return;
        long page = Environment.SystemPageSize, start = ((long)_mapped + page - 1) / page * page, end = ((long)_mapped + ByteLength) / page * page;
        if (end > start) _ = Madvise((nint)start, (nuint)(end - start), 4 /* MADV_DONTNEED */);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static extern int Madvise(nint addr, nuint length, int advice);

    public static WeightMatrix FromF32(int rows, int cols, float[] data) => new(rows, cols, false, data, null, 0);
    public static WeightMatrix FromBf16(int rows, int cols, ushort[] data) => new(rows, cols, true, null, data, 0);

    /// <summary>Views a checkpoint tensor: F32, BF16 and q8_0 blocks (U8 [rows, cols/32·34] in a file whose
    /// metadata carries <see cref="Q8MetadataKey"/>) stay in the mapping; F16 is converted to a float32 array.</summary>
    public static WeightMatrix FromCheckpoint(SafetensorsFile file, TensorInfo t, int rows, int cols)
    {
        if (t.DType == DType.U8 && file.Metadata.ContainsKey(Q8MetadataKey))
        {
            long rowBytes = cols % Q8Block == 0 ? cols / Q8Block * Q8BlockBytes : -1;
            if (t.Shape.Length != 2 || t.Shape[0] != rows || t.Shape[1] != rowBytes)
                throw new InvalidDataException($"{file.Path}: q8_0 tensor \"{t.Name}\" has shape [{string.Join(",", t.Shape)}], config.json implies [{rows},{cols}] = [{rows},{rowBytes}] bytes of blocks");
            return new WeightMatrix(rows, cols, false, null, null, file.Address(t), q8: true);
        }
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
    /// InferenceLinear.GemmMinTokens tokens) keeps its float32 GEMV: it is bound by the bytes of W, not by arithmetic.
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

    /// <summary>The storage pinned (arrays) or as mapped, viewed as the engine's kernels read it; dispose to unpin.
    /// The view is valid until then.</summary>
    public Pinned Pin()
    {
        var format = IsQ8 ? WeightFormat.Q8_0 : IsBf16 ? WeightFormat.Bf16 : WeightFormat.F32;
        if (_mapped != 0) return new Pinned(new WeightView(_mapped, Rows, Cols, format), default);
        MemoryHandle h = IsQ8 ? _q8.AsMemory().Pin() : IsBf16 ? _bf16.AsMemory().Pin() : _f32.AsMemory().Pin();
        unsafe { return new Pinned(new WeightView((nint)h.Pointer, Rows, Cols, format), h); }
    }

    /// <summary>A pinned view of the storage (see <see cref="Pin"/>).</summary>
    public readonly struct Pinned(WeightView view, MemoryHandle handle) : IDisposable
    {
        public WeightView View { get; } = view;
        public void Dispose() => handle.Dispose();
    }

    /// <summary>Row r converted to float32 (embedding lookup).</summary>
    public void RowToF32(int r, Span<float> dst)
    {
        using var pin = Pin();
        pin.View.RowToF32(r, dst);
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
