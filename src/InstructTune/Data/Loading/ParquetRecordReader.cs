using System.Text.Json;
using InstructTune.Data.Records;
using Parquet;
using Parquet.Serialization;

namespace InstructTune.Data.Loading;

/// <summary>
/// Parquet datasets (Parquet.Net): a <c>.parquet</c> file, or a Hugging Face dataset folder whose split lives in
/// <c>data/&lt;split&gt;-0000x-of-0000n.parquet</c> (or <c>&lt;split&gt;-*.parquet</c> at the top, or every
/// <c>*.parquet</c> when no file names the split). Rows are read one row group at a time and each row is turned into
/// the JSON object it stands for (nested structs → objects, lists — e.g. a list-of-struct <c>messages</c> column —
/// → arrays), then mapped by the same record mappers as JSON files, so field maps, validation and rejections behave
/// alike. Records are located as "file (record i)". Format <c>parquet</c> picks the layout from the columns:
/// messages, conversations (ShareGPT), instruction+output (alpaca), question+answer (GSM8K) or text.
/// </summary>
public static class ParquetRecordReader
{
    public static bool IsParquet(string path) =>
        path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase) || (Directory.Exists(path) && Files(path, "train", throwIfNone: false).Count > 0);

    /// <summary>The files of a split, in name order (shard 00000 first).</summary>
    public static List<string> Files(string path, string split, bool throwIfNone = true)
    {
        if (File.Exists(path)) return [path];
        foreach (var dir in new[] { Path.Combine(path, "data"), path })
        {
            if (!Directory.Exists(dir)) continue;
            var named = Directory.EnumerateFiles(dir, $"{split}-*.parquet").Order(StringComparer.Ordinal).ToList();
            if (named.Count > 0) return named;
        }
        var any = Directory.Exists(path) ? Directory.EnumerateFiles(path, "*.parquet", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList() : [];
        if (any.Count > 0 && !any.Any(f => Path.GetFileName(f).Contains('-'))) return any;
        if (throwIfNone) throw new DataFormatException($"{path}: no Parquet files for split '{split}' (looked for data/{split}-*.parquet, {split}-*.parquet)");
        return [];
    }

    /// <summary>Every row of one file as a JSON object chunk, one row group in memory at a time; indices start at <paramref name="firstIndex"/>.</summary>
    public static IEnumerable<JsonChunk> RowsOf(string file, int firstIndex = 0)
    {
        int groups;
        try
        {
            using var probe = File.OpenRead(file);
            var reader = ParquetReader.CreateAsync(probe).GetAwaiter().GetResult();
            groups = reader.RowGroupCount;
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException)
        {
            throw new DataFormatException($"{file}: not a readable Parquet file: {e.Message}");
        }
        int index = firstIndex;
        for (int g = 0; g < groups; g++)
        {
            IList<Dictionary<string, object>> rows;
            using (var stream = File.OpenRead(file))
                rows = ParquetSerializer.DeserializeUntypedAsync(stream, null, g).GetAwaiter().GetResult().Data;
            foreach (var row in rows) yield return new JsonChunk(0, index++, ToJson(row), null);
        }
    }

    /// <summary>The layout the columns of the first row suggest (format <c>parquet</c>).</summary>
    public static DataFormat DetectLayout(string path, string split)
    {
        var file = Files(path, split)[0];
        foreach (var chunk in RowsOf(file))
        {
            using var doc = JsonDocument.Parse(chunk.Bytes);
            var keys = doc.RootElement.EnumerateObject().Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
            if (keys.Contains("messages")) return DataFormat.Messages;
            if (keys.Contains("conversations")) return DataFormat.ShareGpt;
            if (keys.Contains("instruction") && keys.Contains("output")) return DataFormat.Alpaca;
            if (keys.Contains("question") && keys.Contains("answer")) return DataFormat.Gsm8k;
            if (keys.Contains("text")) return DataFormat.Text;
            throw new DataFormatException($"{file}: cannot tell the layout from the columns ({string.Join(", ", keys.Order())}); name it with format: alpaca|messages|sharegpt|… and fields: if the columns differ");
        }
        throw new DataFormatException($"{path}: the split '{split}' has no rows");
    }

    private static ReadOnlyMemory<byte> ToJson(Dictionary<string, object> row)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer)) Write(w, row);
        return buffer.WrittenMemory.ToArray();
    }

    private static void Write(Utf8JsonWriter w, object? value)
    {
        switch (value)
        {
            case null: w.WriteNullValue(); break;
            case string s: w.WriteStringValue(s); break;
            case bool b: w.WriteBooleanValue(b); break;
            case IDictionary<string, object> d:
                w.WriteStartObject();
                foreach (var (k, v) in d) { w.WritePropertyName(k); Write(w, v); }
                w.WriteEndObject();
                break;
            case byte[] bytes: w.WriteStringValue(System.Text.Encoding.UTF8.GetString(bytes)); break;
            case System.Collections.IEnumerable list:
                w.WriteStartArray();
                foreach (var x in list) Write(w, x);
                w.WriteEndArray();
                break;
            case IFormattable f when value is int or long or short or byte or sbyte or uint or ulong or ushort or float or double or decimal:
                w.WriteRawValue(f.ToString(null, System.Globalization.CultureInfo.InvariantCulture)); break;
            default: w.WriteStringValue(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)); break;
        }
    }
}
