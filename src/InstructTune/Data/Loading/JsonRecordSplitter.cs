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
/// costs only that element. An object record that lacks its closing '}' is noticed where the next record starts
/// (",{" directly inside an object is never valid JSON): it is reported on its own and the records after it are
/// read as usual. Other unbalanced elements swallow the rest of their array, which is reported as truncated.
/// With <c>maxStringBytes</c> &gt; 0 every JSON string is cut to about that many bytes while it streams past (at a
/// character boundary, never inside an escape or a surrogate pair), so a 40 MB field costs a bounded buffer and
/// the reader's memory is bounded by what is kept, not by the record's size.
/// </summary>
public static class JsonRecordSplitter
{
    private const int ReadBlock = 1 << 16;

    public static IEnumerable<JsonChunk> Split(string path, int maxStringBytes = 0)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, ReadBlock, FileOptions.SequentialScan);
        foreach (var chunk in Split(stream, maxStringBytes)) yield return chunk;
    }

    public static IEnumerable<JsonChunk> Split(Stream stream, int maxStringBytes = 0)
    {
        var cap = new StringCap(maxStringBytes);
        var block = new byte[ReadBlock];
        var element = new Growable();
        int line = 1, index = 0, elementLine = 0;
        int depth = 0;            // 0: before '[' (array) ; 1: between elements ; >1 inside an element
        bool? isArray = null, inString = false, closed = false, bomChecked = false;
        byte lastSignificant = 0; // the last byte outside strings, for the missing-'}' resync
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
                    // JSONL: one record per line; blank lines are skipped. Strings are tracked only to cap them.
                    if (inString == true && b != (byte)'\n')
                    {
                        if (cap.Keep(b, out bool endsJ)) element.Add(b);
                        if (endsJ) inString = false;
                        continue;
                    }
                    if (b == (byte)'\n')
                    {
                        if (element.Length > 0) yield return new JsonChunk(elementLine, index++, element.Trimmed(), null);
                        element.Clear();
                        inString = false;
                        cap.Reset();
                        line++;
                        continue;
                    }
                    if (element.Length == 0)
                    {
                        if (IsSpace(b)) continue;
                        elementLine = line;
                    }
                    element.Add(b);
                    if (b == (byte)'"') { inString = true; cap.Reset(); }
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
                    if (cap.Keep(b, out bool ends)) element.Add(b);
                    if (ends) inString = false;
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
                if (depth == 2 && b == (byte)'{' && lastSignificant == (byte)',' && element.FirstByte == (byte)'{')
                {
                    // "…,{" inside a top-level object: the record before lacks its '}'. Report it and restart here.
                    yield return new JsonChunk(elementLine, index++, default,
                        $"the record is not closed: a new record starts at line {line} before its closing '}}'");
                    element.Clear();
                    elementLine = line;
                    depth = 1;
                }
                element.Add(b);
                if (!IsSpace(b)) lastSignificant = b;
                if (b == (byte)'"') { inString = true; cap.Reset(); }
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

    /// <summary>
    /// Follows one JSON string after its opening quote, byte by byte: where it ends, and whether each byte is kept.
    /// Past <c>max</c> bytes it stops keeping at the first safe place (not inside an escape, a UTF-8 sequence or a
    /// surrogate pair) and keeps only the closing quote.
    /// </summary>
    private struct StringCap(int max)
    {
        private int _bytes, _hexLeft, _hexValue;
        private bool _escape, _cutting, _highSurrogate;

        public void Reset() { _bytes = 0; _hexLeft = 0; _escape = _cutting = _highSurrogate = false; }

        public bool Keep(byte b, out bool ends)
        {
            ends = false;
            bool atBoundary = !_escape && _hexLeft == 0 && (b & 0xC0) != 0x80 && !_highSurrogate;
            if (_hexLeft > 0)
            {
                _hexValue = _hexValue * 16 + HexValue(b);
                if (--_hexLeft == 0) _highSurrogate = _hexValue is >= 0xD800 and <= 0xDBFF;
            }
            else if (_escape) { _escape = false; if (b == (byte)'u') { _hexLeft = 4; _hexValue = 0; } else _highSurrogate = false; }
            else if (b == (byte)'\\') _escape = true;
            else if (b == (byte)'"') { ends = true; return true; }
            else _highSurrogate = false;
            if (max <= 0) return true;
            if (!_cutting && atBoundary && _bytes >= max) _cutting = true;
            if (_cutting) return false;
            _bytes++;
            return true;
        }

        private static int HexValue(byte b) => b switch
        {
            >= (byte)'0' and <= (byte)'9' => b - '0',
            >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
            >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
            _ => 0,
        };
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

        public byte FirstByte => Length > 0 ? _data[0] : (byte)0;

        public ReadOnlyMemory<byte> Trimmed()
        {
            int end = Length;
            while (end > 0 && IsSpace(_data[end - 1])) end--;
            return new ReadOnlyMemory<byte>(_data, 0, end);
        }
    }
}
