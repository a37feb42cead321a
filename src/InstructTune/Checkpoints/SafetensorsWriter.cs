// Writer for safetensors files (atomic) and sharded checkpoints with model.safetensors.index.json.
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace InstructTune.Checkpoints;

/// <summary>A tensor to write: its raw little-endian bytes are produced on demand, so a large checkpoint
/// can be converted one tensor at a time.</summary>
public sealed record TensorToWrite(string Name, DType DType, long[] Shape, Func<ReadOnlyMemory<byte>> Data)
{
    public long ByteLength => Shape.Aggregate((long)DType.Size(), (a, b) => a * b);

    public static TensorToWrite FromF32(string name, DType dtype, long[] shape, float[] values) =>
        new(name, dtype, shape, () => DTypes.FromF32(dtype, values));
}

public static class SafetensorsWriter
{
    /// <summary>Writes one safetensors file atomically with __metadata__ {"format":"pt"}.</summary>
    public static void Write(string path, IReadOnlyList<TensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        var meta = new JsonObject { ["format"] = "pt" };
        if (metadata != null) foreach (var (k, v) in metadata) meta[k] = v;
        header["__metadata__"] = meta;
        long offset = 0;
        foreach (var t in tensors)
        {
            if (header.ContainsKey(t.Name)) throw new ArgumentException($"tensor \"{t.Name}\" is written twice");
            header[t.Name] = new JsonObject
            {
                ["dtype"] = t.DType.Name(),
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + t.ByteLength),
            };
            offset += t.ByteLength;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8;  // the data area starts 8-aligned, as the reference writer does
        AtomicFile.Write(path, fs =>
        {
            fs.Write(BitConverter.GetBytes((ulong)padded));
            fs.Write(json);
            for (int i = json.Length; i < padded; i++) fs.WriteByte((byte)' ');
            foreach (var t in tensors)
            {
                var data = t.Data();
                if (data.Length != t.ByteLength)
                    throw new ArgumentException($"tensor \"{t.Name}\": {data.Length} bytes given, shape needs {t.ByteLength}");
                fs.Write(data.Span);
            }
        });
    }

    /// <summary>Writes a checkpoint into <paramref name="dir"/>: one model.safetensors when it fits in
    /// <paramref name="maxShardBytes"/>, else model-0000i-of-0000n.safetensors shards plus the index; every file
    /// carries <paramref name="metadata"/> in its __metadata__.</summary>
    public static IReadOnlyList<string> WriteCheckpoint(string dir, IReadOnlyList<TensorToWrite> tensors, long maxShardBytes = long.MaxValue,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        Directory.CreateDirectory(dir);
        var shards = new List<List<TensorToWrite>> { new() };
        long size = 0;
        foreach (var t in tensors)
        {
            if (size > 0 && size + t.ByteLength > maxShardBytes) { shards.Add([]); size = 0; }
            shards[^1].Add(t);
            size += t.ByteLength;
        }
        if (shards.Count == 1)
        {
            Write(Path.Combine(dir, "model.safetensors"), tensors, metadata);
            // The index wins over model.safetensors when both exist: remove a stale one (the switch to the new
            // weights is that one unlink; a crash before it leaves the old, complete, sharded checkpoint), then its shards.
            RemoveStale(dir, keep: ["model.safetensors"]);
            return ["model.safetensors"];
        }
        var names = new List<string>();
        var weightMap = new JsonObject();
        for (int i = 0; i < shards.Count; i++)
        {
            string file = $"model-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            Write(Path.Combine(dir, file), shards[i], metadata);
            foreach (var t in shards[i]) weightMap[t.Name] = file;
            names.Add(file);
        }
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = tensors.Sum(t => t.ByteLength) },
            ["weight_map"] = weightMap,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, CheckpointFolder.IndexFile),
            index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        names.Add(CheckpointFolder.IndexFile);
        RemoveStale(dir, keep: names);   // an older model.safetensors or shards of another count
        return names;
    }

    /// <summary>Deletes weight files of an earlier checkpoint in <paramref name="dir"/> that are not in <paramref name="keep"/>:
    /// the index first (so no reader follows it to missing shards), then model.safetensors and model-*-of-*.safetensors.</summary>
    private static void RemoveStale(string dir, IReadOnlyCollection<string> keep)
    {
        var index = Path.Combine(dir, CheckpointFolder.IndexFile);
        if (!keep.Contains(CheckpointFolder.IndexFile) && File.Exists(index)) File.Delete(index);
        foreach (var path in Directory.EnumerateFiles(dir, "model*.safetensors"))
        {
            var name = Path.GetFileName(path);
            bool ours = name == CheckpointFolder.SingleFile ||
                        System.Text.RegularExpressions.Regex.IsMatch(name, @"^model-\d{5}-of-\d{5}\.safetensors$");
            if (ours && !keep.Contains(name)) File.Delete(path);
        }
    }

    /// <summary>Parses sizes like "2GB", "500MB", "1024" (bytes).</summary>
    public static long ParseSize(string s)
    {
        s = s.Trim().ToUpperInvariant();
        (string suffix, long mult)[] units = [("GIB", 1L << 30), ("MIB", 1L << 20), ("KIB", 1L << 10), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1000), ("B", 1)];
        foreach (var (suffix, mult) in units)
            if (s.EndsWith(suffix) && double.TryParse(s[..^suffix.Length], System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0)
                return (long)(v * mult);
        if (long.TryParse(s, out var n) && n > 0) return n;
        throw new FormatException($"invalid size \"{s}\" (e.g. 2GB, 500MB)");
    }
}
