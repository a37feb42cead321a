// A GGUF v3 file writer (the format llama.cpp, Ollama and LM Studio load; spec: ggml's docs/gguf.md):
//   header:  magic "GGUF", version u32 = 3, tensor count u64, metadata count u64
//   metadata: key (u64 length + UTF-8), value type u32, value (strings as u64 length + bytes; arrays as element
//            type u32, count u64, elements)
//   tensor infos: name, n_dims u32, dims u64 × n_dims in ggml order (ne[0] = the contiguous, innermost
//            dimension, i.e. a row-major [rows, cols] matrix is written as [cols, rows]), ggml type u32,
//            offset u64 into the data section
//   data:    at the next multiple of general.alignment (32), each tensor at an aligned offset.
// Tensor bytes are produced on demand while writing, so a model is never held twice in memory.
using System.Text;

namespace InstructTune.Export.Gguf;

/// <summary>ggml tensor types this writer produces.</summary>
public enum GgmlType : uint { F32 = 0, F16 = 1, Q8_0 = 8, BF16 = 30 }

public sealed class GgufWriter
{
    public const uint Version = 3;
    public const int Alignment = 32;

    private enum ValueType : uint { U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7, String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12 }

    private readonly List<(string Key, Action<BinaryWriter> Write)> _kv = [];
    private readonly List<(string Name, long[] Ne, GgmlType Type, long Bytes, Func<byte[]> Data)> _tensors = [];
    private readonly HashSet<string> _keys = [];

    public IReadOnlyList<string> TensorNames => _tensors.Select(t => t.Name).ToList();

    private void Add(string key, ValueType type, Action<BinaryWriter> value)
    {
        if (!_keys.Add(key)) throw new ArgumentException($"GGUF key {key} written twice");
        _kv.Add((key, w => { Str(w, key); w.Write((uint)type); value(w); }));
    }

    public void Add(string key, string value) => Add(key, ValueType.String, w => Str(w, value));
    public void Add(string key, uint value) => Add(key, ValueType.U32, w => w.Write(value));
    public void Add(string key, int value) => Add(key, ValueType.I32, w => w.Write(value));
    public void Add(string key, float value) => Add(key, ValueType.F32, w => w.Write(value));
    public void Add(string key, bool value) => Add(key, ValueType.Bool, w => w.Write((byte)(value ? 1 : 0)));

    public void Add(string key, IReadOnlyList<string> values) => Add(key, ValueType.Array, w =>
    {
        w.Write((uint)ValueType.String); w.Write((ulong)values.Count);
        foreach (var v in values) Str(w, v);
    });

    public void Add(string key, IReadOnlyList<float> values) => Add(key, ValueType.Array, w =>
    {
        w.Write((uint)ValueType.F32); w.Write((ulong)values.Count);
        foreach (var v in values) w.Write(v);
    });

    public void Add(string key, IReadOnlyList<int> values) => Add(key, ValueType.Array, w =>
    {
        w.Write((uint)ValueType.I32); w.Write((ulong)values.Count);
        foreach (var v in values) w.Write(v);
    });

    /// <summary>Adds a tensor of row-major shape <paramref name="shape"/> (HF order, e.g. [out, in]); <paramref name="data"/>
    /// returns its bytes in <paramref name="type"/> when the file is written.</summary>
    public void AddTensor(string name, long[] shape, GgmlType type, Func<byte[]> data)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        long bytes = type switch
        {
            GgmlType.F32 => n * 4,
            GgmlType.F16 or GgmlType.BF16 => n * 2,
            GgmlType.Q8_0 => shape[^1] % 32 == 0 ? n / 32 * 34 : throw new ArgumentException($"{name}: q8_0 rows must be a multiple of 32 values"),
            _ => throw new ArgumentException($"{name}: type {type}"),
        };
        if (_tensors.Any(t => t.Name == name)) throw new ArgumentException($"GGUF tensor {name} added twice");
        _tensors.Add((name, shape.Reverse().ToArray(), type, bytes, data));
    }

    public void Write(Stream s)
    {
        using var w = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true);
        w.Write("GGUF"u8);
        w.Write(Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_kv.Count);
        foreach (var (_, write) in _kv) write(w);
        long offset = 0;
        foreach (var t in _tensors)
        {
            Str(w, t.Name);
            w.Write((uint)t.Ne.Length);
            foreach (var d in t.Ne) w.Write((ulong)d);
            w.Write((uint)t.Type);
            w.Write((ulong)offset);
            offset = Align(offset + t.Bytes);
        }
        Pad(w);
        foreach (var t in _tensors)
        {
            var bytes = t.Data();
            if (bytes.Length != t.Bytes) throw new InvalidOperationException($"GGUF tensor {t.Name}: {bytes.Length} bytes produced, {t.Bytes} declared");
            w.Write(bytes);
            Pad(w);
        }
        w.Flush();
    }

    private static long Align(long x) => (x + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter w)
    {
        long pos = w.BaseStream.Position;
        for (long i = pos; i < Align(pos); i++) w.Write((byte)0);
    }

    private static void Str(BinaryWriter w, string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)b.Length);
        w.Write(b);
    }
}
