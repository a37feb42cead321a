// Reader for the safetensors format: 8-byte little-endian header length N, N bytes of JSON header
// { name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str} }, then the data area.
// The whole header is validated from a plain file read before the file is memory-mapped, so a hostile file
// fails with InvalidDataException and never causes an out-of-range access, a hang or a huge allocation.
using System.IO.MemoryMappedFiles;
using System.Text.Json;

namespace InstructTune.Checkpoints;

/// <summary>One tensor's entry in the header; offsets are relative to the start of the data area.</summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public long ByteLength => End - Begin;
}

public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Headers above this size are refused: real ones are kilobytes to a few megabytes.</summary>
    public const long MaxHeaderBytes = 100L << 20;

    private readonly MemoryMappedFile? _mmf;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly IntPtr _base;            // start of the data area in the mapping
    private readonly Dictionary<string, TensorInfo> _tensors;

    public string Path { get; }
    public long DataOffset { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    private SafetensorsFile(string path, long dataOffset, Dictionary<string, TensorInfo> tensors,
        Dictionary<string, string> metadata, long fileLength)
    {
        Path = path;
        DataOffset = dataOffset;
        _tensors = tensors;
        Metadata = metadata;
        if (fileLength > dataOffset)
        {
            _mmf = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _mmf.CreateViewAccessor(0, fileLength, MemoryMappedFileAccess.Read);
            IntPtr p = _view.SafeMemoryMappedViewHandle.DangerousGetHandle() + (nint)_view.PointerOffset;
            _base = p + (nint)dataOffset;
        }
    }

    /// <summary>Opens and validates <paramref name="path"/>; throws InvalidDataException naming the file and the fault.</summary>
    public static SafetensorsFile Open(string path)
    {
        Common.FileKind.RequireRegularFile(path, "safetensors"); // a folder or FIFO in place of a shard: refuse, never block
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = fs.Length;
        var (dataOffset, tensors, metadata) = ReadHeader(fs, fileLength, path);
        fs.Dispose();
        return new SafetensorsFile(path, dataOffset, tensors, metadata, fileLength);
    }

    /// <summary>Validates a header from a stream: everything the format promises is checked here.</summary>
    public static (long DataOffset, Dictionary<string, TensorInfo> Tensors, Dictionary<string, string> Metadata)
        ReadHeader(Stream s, long fileLength, string source)
    {
        if (fileLength < 8) throw Bad(source, $"file is {fileLength} bytes, shorter than the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        s.Position = 0;
        s.ReadExactly(lenBytes);
        ulong n = BitConverter.ToUInt64(lenBytes);
        if (n < 2) throw Bad(source, $"header length {n} is too small for a JSON object");
        if (n > MaxHeaderBytes) throw Bad(source, $"header length {n} exceeds the limit of {MaxHeaderBytes} bytes");
        if ((long)n > fileLength - 8) throw Bad(source, $"header length {n} runs past the end of the {fileLength}-byte file");
        var header = new byte[n];
        s.ReadExactly(header);
        long dataOffset = 8 + (long)n;
        long dataLength = fileLength - dataOffset;

        JsonDocument doc;
        try { doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw Bad(source, $"header is not well-formed JSON ({e.Message})"); }
        catch (ArgumentException e) { throw Bad(source, $"header is not valid UTF-8 JSON ({e.Message})"); }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(source, "header must be a JSON object");

        // JsonDocument checks UTF-8 only when a string is read, reporting it as InvalidOperationException.
        try { return Validate(doc, dataOffset, dataLength, source); }
        catch (InvalidOperationException e) { throw Bad(source, $"header holds invalid UTF-8 ({e.Message})"); }
    }

    private static (long, Dictionary<string, TensorInfo>, Dictionary<string, string>) Validate(
        JsonDocument doc, long dataOffset, long dataLength, string source)
    {
        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        bool sawMeta = false;
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                if (sawMeta) throw Bad(source, "__metadata__ appears twice");
                sawMeta = true;
                if (prop.Value.ValueKind != JsonValueKind.Object) throw Bad(source, "__metadata__ must be an object of strings");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw Bad(source, $"__metadata__.{m.Name} must be a string");
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            if (tensors.ContainsKey(prop.Name)) throw Bad(source, $"tensor \"{prop.Name}\" appears twice");
            tensors[prop.Name] = ParseEntry(prop.Name, prop.Value, dataLength, source);
        }

        // Spans must not overlap (zero-length spans are allowed anywhere).
        TensorInfo? prev = null;
        foreach (var t in tensors.Values.Where(t => t.ByteLength > 0).OrderBy(t => t.Begin))
        {
            if (prev != null && t.Begin < prev.End)
                throw Bad(source, $"tensors \"{prev.Name}\" [{prev.Begin},{prev.End}) and \"{t.Name}\" [{t.Begin},{t.End}) overlap");
            prev = t;
        }
        return (dataOffset, tensors, metadata);
    }

    private static TensorInfo ParseEntry(string name, JsonElement e, long dataLength, string source)
    {
        if (e.ValueKind != JsonValueKind.Object) throw Bad(source, $"tensor \"{name}\": entry must be an object");
        DType? dtype = null;
        long[]? shape = null;
        long[]? offsets = null;
        foreach (var p in e.EnumerateObject())
        {
            switch (p.Name)
            {
                case "dtype":
                    if (p.Value.ValueKind != JsonValueKind.String) throw Bad(source, $"tensor \"{name}\": dtype must be a string");
                    dtype = DTypes.Parse(p.Value.GetString()!)
                            ?? throw Bad(source, $"tensor \"{name}\": unknown dtype \"{p.Value.GetString()}\"");
                    break;
                case "shape": shape = ReadLongs(p.Value, name, "shape", source, maxLength: 8); break;
                case "data_offsets": offsets = ReadLongs(p.Value, name, "data_offsets", source, maxLength: 2); break;
                default: throw Bad(source, $"tensor \"{name}\": unknown field \"{p.Name}\"");
            }
        }
        if (dtype == null) throw Bad(source, $"tensor \"{name}\": missing dtype");
        if (shape == null) throw Bad(source, $"tensor \"{name}\": missing shape");
        if (offsets == null || offsets.Length != 2) throw Bad(source, $"tensor \"{name}\": data_offsets must be [begin, end]");
        long begin = offsets[0], end = offsets[1];
        if (begin > end) throw Bad(source, $"tensor \"{name}\": data_offsets begin {begin} > end {end}");
        if (end > dataLength) throw Bad(source, $"tensor \"{name}\": data_offsets end {end} is past the data area ({dataLength} bytes)");
        long bytes = dtype.Value.Size();
        foreach (var d in shape)
        {
            // Overflow-safe: any product beyond the data area is already wrong.
            if (d != 0 && bytes > dataLength / d + 1) { bytes = long.MaxValue; break; }
            bytes *= d;
        }
        if (shape.Contains(0)) bytes = 0;
        if (bytes != end - begin)
            throw Bad(source, $"tensor \"{name}\": shape [{string.Join(",", shape)}] × {dtype} needs {(bytes == long.MaxValue ? "too many" : bytes.ToString())} bytes but data_offsets span {end - begin}");
        return new TensorInfo(name, dtype.Value, shape, begin, end);
    }

    private static long[] ReadLongs(JsonElement e, string name, string field, string source, int maxLength)
    {
        if (e.ValueKind != JsonValueKind.Array) throw Bad(source, $"tensor \"{name}\": {field} must be an array");
        int len = e.GetArrayLength();
        if (len > maxLength) throw Bad(source, $"tensor \"{name}\": {field} has {len} entries (at most {maxLength})");
        var result = new long[len];
        int i = 0;
        foreach (var v in e.EnumerateArray())
        {
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x) || x < 0)
                throw Bad(source, $"tensor \"{name}\": {field} must hold non-negative integers, got {v.GetRawText()}");
            result[i++] = x;
        }
        return result;
    }

    private static InvalidDataException Bad(string source, string what) => new($"{source}: invalid safetensors file: {what}");

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public TensorInfo Info(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"{Path}: no tensor \"{name}\"");

    /// <summary>The raw little-endian bytes of a tensor, straight from the mapping (valid while this file is open).</summary>
    public ReadOnlySpan<byte> Bytes(string name) => Bytes(Info(name));

    public ReadOnlySpan<byte> Bytes(TensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (t.ByteLength == 0) return [];
        if (t.ByteLength > int.MaxValue) throw new NotSupportedException($"{Path}: tensor \"{t.Name}\" is over 2 GiB");
        return NativeSpan.Create<byte>(_base + (nint)t.Begin, (int)t.ByteLength);
    }

    /// <summary>Address of a tensor's first byte in the mapping, for kernels that stream weights in place.</summary>
    public IntPtr Address(TensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _base + (nint)t.Begin;
    }

    /// <summary>A float tensor converted to float32 (a copy).</summary>
    public float[] ReadF32(string name)
    {
        var t = Info(name);
        if (!t.DType.IsFloat()) throw new InvalidDataException($"{Path}: tensor \"{name}\" has dtype {t.DType}, not a float type");
        var dst = new float[t.ElementCount];
        DTypes.ToF32(t.DType, Bytes(t), dst);
        return dst;
    }

    private bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view?.Dispose();
        _mmf?.Dispose();
    }
}
