namespace InstructTune.Data.Loading;

/// <summary>
/// One record's raw bytes as cut out of a JSON array or a JSONL file. <see cref="Bytes"/> is only valid until the
/// splitter moves on (the buffer is reused), so parse it before asking for the next one. A non-null
/// <see cref="StructuralError"/> means the bytes could not be cut cleanly (e.g. the file ends inside the record).
/// </summary>
public readonly record struct JsonChunk(int Line, int Index, ReadOnlyMemory<byte> Bytes, string? StructuralError);

/// <summary>
/// Streams the records of a JSON array file (<c>[{…},{…}]</c>, minified or pretty) or of a JSONL file without
/// ever holding the whole file: it scans bytes once, tracking strings, escapes and bracket depth, and hands out
/// each top-level element with the 1-based line it starts on. A malformed element whose brackets still balance
/// costs only that element; an unbalanced one swallows the rest of its array, which is reported as truncated.
/// </summary>
public static class JsonRecordSplitter
{
    private const int ReadBlock = 1 << 16;

    public static IEnumerable<JsonChunk> Split(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, ReadBlock, FileOptions.SequentialScan);
        foreach (var chunk in Split(stream)) yield return chunk;
    }

    public static IEnumerable<JsonChunk> Split(Stream stream)
    {
        var block = new byte[ReadBlock];
        var element = new Growable();
        int line = 1, index = 0, elementLine = 0;
        int depth = 0;            // 0: before '[' (array) ; 1: between elements ; >1 inside an element
        bool? isArray = null, inString = false, escape = false, closed = false, bomChecked = false;
        int read;
        while ((read = stream.Read(block, 0, block.Length)) > 0)
        {
            int start = 0;
            if (bomChecked == false)
            {
                bomChecked = true;
                if (read >= 3 && block[0] == 0xEF && block[1] == 0xBB && block[2] == 0xBF) start = 3;
            }
            for (int i = start; i < read; i++)
            {
                byte b = block[i];
                if (isArray == null)
                {
                    if (IsSpace(b)) { if (b == (byte)'\n') line++; continue; }
                    isArray = b == (byte)'[';
                    if (isArray == true) { depth = 1; continue; }
                }
                if (isArray == false)
                {
                    // JSONL: one record per line; blank lines are skipped.
                    if (b == (byte)'\n')
                    {
                        if (element.Length > 0) yield return new JsonChunk(elementLine, index++, element.Trimmed(), null);
                        element.Clear();
                        line++;
                        continue;
                    }
                    if (element.Length == 0)
                    {
                        if (IsSpace(b)) continue;
                        elementLine = line;
                    }
                    element.Add(b);
                    continue;
                }
                if (closed == true)
                {
                    if (b == (byte)'\n') line++;
                    else if (!IsSpace(b))
                    {
                        yield return new JsonChunk(line, index++, default, "data after the closing ']' of the top-level array");
                        yield break;
                    }
                    continue;
                }
                if (b == (byte)'\n') line++;
                if (inString == true)
                {
                    element.Add(b);
                    if (escape == true) escape = false;
                    else if (b == (byte)'\\') escape = true;
                    else if (b == (byte)'"') inString = false;
                    continue;
                }
                if (depth == 1)
                {
                    if (IsSpace(b)) continue;
                    if (b == (byte)',' || b == (byte)']')
                    {
                        if (element.Length > 0) yield return new JsonChunk(elementLine, index++, element.Trimmed(), null);
                        else if (b == (byte)',') yield return new JsonChunk(line, index++, default, "empty array element (stray ',')");
                        element.Clear();
                        if (b == (byte)']') { closed = true; depth = 0; }
                        continue;
                    }
                    if (element.Length == 0) elementLine = line;
                }
                element.Add(b);
                if (b == (byte)'"') inString = true;
                else if (b == (byte)'{' || b == (byte)'[') depth++;
                else if (b == (byte)'}' || b == (byte)']') depth = Math.Max(1, depth - 1);
            }
        }
        if (isArray == false && element.Length > 0)
            yield return new JsonChunk(elementLine, index, element.Trimmed(), null);
        else if (isArray == true && closed != true)
            yield return new JsonChunk(element.Length > 0 ? elementLine : line, index, default,
                "the file ends inside the top-level array (truncated)");
    }

    private static bool IsSpace(byte b) => b == (byte)' ' || b == (byte)'\t' || b == (byte)'\r' || b == (byte)'\n';

    /// <summary>A reusable byte buffer (no per-record allocation once it has grown to the largest record).</summary>
    private sealed class Growable
    {
        private byte[] _data = new byte[4096];
        public int Length { get; private set; }

        public void Add(byte b)
        {
            if (Length == _data.Length) Array.Resize(ref _data, _data.Length * 2);
            _data[Length++] = b;
        }

        public void Clear() => Length = 0;

        public ReadOnlyMemory<byte> Trimmed()
        {
            int end = Length;
            while (end > 0 && IsSpace(_data[end - 1])) end--;
            return new ReadOnlyMemory<byte>(_data, 0, end);
        }
    }
}
