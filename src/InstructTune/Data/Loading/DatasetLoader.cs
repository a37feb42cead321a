using System.Text;
using System.Text.Json;
using InstructTune.Data.Records;

namespace InstructTune.Data.Loading;

/// <summary>What a loader read: a record or a located rejection (exactly one is non-null).</summary>
public readonly record struct LoadItem(InstructionRecord? Record, RecordRejection? Rejection);

/// <summary>How to read one dataset: its format, field renames, and the task label when the format has none.</summary>
/// <param name="MaxStringBytes">Cut every string field (JSON string, CSV cell) to about this many UTF-8 bytes while
/// reading, so a huge record costs memory in proportion to what is kept (0: no cut). See <see cref="CutFor"/>.</param>
/// <param name="Split">Split of a Hugging Face Parquet folder (data/&lt;split&gt;-*.parquet).</param>
public sealed record LoadOptions(DataFormat Format, FieldMap? Fields = null, string? TaskLabel = null, int MaxStringBytes = 0, string Split = "train")
{
    /// <summary>
    /// The cut for examples truncated to <paramref name="maxSeqLen"/> tokens: truncation keeps at most that many
    /// tokens of each field, from its start, and no token of a real vocabulary spans more than 256 bytes, so a
    /// field cut to (maxSeqLen + 16) × 256 bytes still tokenizes to more than it keeps; 0 (no limit) keeps all.
    /// </summary>
    public static int CutFor(int maxSeqLen) => maxSeqLen > 0 ? (int)Math.Min(int.MaxValue / 2, (maxSeqLen + 16L) * 256) : 0;
}

/// <summary>
/// Streams any supported dataset (a file, or for SNI a task file or a folder of them) as records and located
/// rejections, in file order. It never throws for a bad record: that is the job of <see cref="RecordValidator"/>
/// and its policy. It throws <see cref="DataFormatException"/> only for a file it cannot open or identify.
/// </summary>
public static class DatasetLoader
{
    public static IEnumerable<LoadItem> Read(string path, LoadOptions options)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new DataFormatException($"{path}: no such file or folder");
        // A folder is only a dataset for SNI; a FIFO or device would block or never end: refuse before opening.
        bool parquet = options.Format == DataFormat.Parquet || (options.Format is not (DataFormat.Sni or DataFormat.Csv) && ParquetRecordReader.IsParquet(path));
        if ((options.Format != DataFormat.Sni && !parquet) || !Directory.Exists(path)) Common.FileKind.RequireRegularFile(path, "dataset");
        var fields = options.Fields ?? FieldMap.Identity;
        var task = options.TaskLabel ?? Path.GetFileNameWithoutExtension(path.TrimEnd('/', '\\'));
        if (parquet)
        {
            var layout = options.Format == DataFormat.Parquet ? ParquetRecordReader.DetectLayout(path, options.Split) : options.Format;
            return ReadParquet(path, options.Split, layout, fields, task);
        }
        return options.Format switch
        {
            DataFormat.Sni => ReadSni(path),
            DataFormat.Csv => CsvRecordReader.Read(path, fields, task, options.MaxStringBytes),
            _ => ReadJson(JsonRecordSplitter.Split(path, options.MaxStringBytes), path, options.Format, fields, task),
        };
    }

    /// <summary>Streams a JSON array or JSONL from any stream (e.g. stdin or a decompressor); <paramref name="name"/> locates errors.</summary>
    public static IEnumerable<LoadItem> Read(Stream stream, string name, LoadOptions options)
    {
        if (options.Format is DataFormat.Sni or DataFormat.Csv)
            throw new ArgumentException($"{options.Format} is read from files only");
        return ReadJson(JsonRecordSplitter.Split(stream, options.MaxStringBytes), name, options.Format, options.Fields ?? FieldMap.Identity, options.TaskLabel ?? name);
    }

    private static IEnumerable<LoadItem> ReadJson(IEnumerable<JsonChunk> chunks, string path, DataFormat format, FieldMap fields, string task)
    {
        var produced = new List<InstructionRecord>();
        foreach (var chunk in chunks)
        {
            var src = new RecordSource(path, chunk.Line, chunk.Index);
            if (chunk.StructuralError != null)
            {
                yield return Reject(src, null, RejectReason.Truncated, chunk.StructuralError, null);
                continue;
            }
            var span = chunk.Bytes.Span;
            if (!System.Text.Unicode.Utf8.IsValid(span))
            {
                yield return Reject(src, null, RejectReason.InvalidUtf8, "record is not valid UTF-8", null);
                continue;
            }
            produced.Clear();
            RecordRejection? rejection = null;
            try
            {
                using var doc = JsonDocument.Parse(chunk.Bytes);
                RecordMappers.Map(format, doc.RootElement, src, fields, task, produced);
            }
            catch (JsonException ex)
            {
                rejection = new RecordRejection(src, null, RejectReason.BadJson, ex.Message, Raw(span));
            }
            catch (RecordProblem p)
            {
                rejection = new RecordRejection(src, p.Field, p.Reason, p.Message, Raw(span));
            }
            catch (InvalidOperationException)
            {
                // JsonElement.GetString refuses "\ud800"-style escapes that do not form a surrogate pair.
                rejection = new RecordRejection(src, null, RejectReason.InvalidUtf8,
                    "a string holds an unpaired surrogate escape (such as \\ud800): not valid Unicode", Raw(span));
            }
            if (rejection != null) { yield return new LoadItem(null, rejection); continue; }
            foreach (var r in produced) yield return new LoadItem(r, null);
        }
    }

    private static IEnumerable<LoadItem> ReadParquet(string path, string split, DataFormat layout, FieldMap fields, string task)
    {
        int first = 0;
        foreach (var file in ParquetRecordReader.Files(path, split))
        {
            int n = 0;
            foreach (var item in ReadJson(ParquetRecordReader.RowsOf(file, first).Select(c => { n++; return c; }), file, layout, fields, task))
                yield return item;
            first += n;
        }
    }

    private static IEnumerable<LoadItem> ReadSni(string path)
    {
        var files = Directory.Exists(path)
            ? Directory.EnumerateFiles(path, "*.json").Order(StringComparer.Ordinal).ToList()
            : [path];
        foreach (var file in files)
        {
            Common.FileKind.RequireRegularFile(file, "SNI task");
            var (_, records, rejections) = SniTask.Read(file);
            foreach (var r in records) yield return new LoadItem(r, null);
            foreach (var r in rejections) yield return new LoadItem(null, r);
        }
    }

    private static LoadItem Reject(RecordSource src, string? field, string reason, string message, string? raw) =>
        new(null, new RecordRejection(src, field, reason, message, raw));

    /// <summary>The raw text kept with a rejection (capped so a 26,000-character record does not bloat the log).</summary>
    internal static string Raw(ReadOnlySpan<byte> bytes)
    {
        var text = Encoding.UTF8.GetString(bytes[..Math.Min(bytes.Length, 2000)]);
        return bytes.Length > 2000 ? text + "…" : text;
    }
}
