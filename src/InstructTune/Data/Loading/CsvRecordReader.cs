using System.Text;
using InstructTune.Data.Records;

namespace InstructTune.Data.Loading;

/// <summary>
/// Streams a CSV file (RFC 4180: comma-separated, double-quoted fields may hold commas, quotes as "" and line
/// breaks) with a header row into alpaca-shaped records (instruction, input, output, optional task), column names
/// renamed by the field map. The line reported for a row is its first physical line. Bytes that are not UTF-8
/// decode to U+FFFD and reject the row rather than pass silently. (Our own small parser, not CsvHelper: the
/// CsvHelper 34 in the mirror has a different API, and we need each row's first line number.)
/// </summary>
internal static class CsvRecordReader
{
    public static IEnumerable<LoadItem> Read(string path, FieldMap f, string task, int maxCellBytes = 0)
    {
        using var reader = new StreamReader(path, new UTF8Encoding(false, false), detectEncodingFromByteOrderMarks: true);
        // Cells are cut to maxCellBytes/2 UTF-16 chars (at most as many bytes when the text is ASCII-heavy; never
        // fewer tokens than the JSON cut keeps, since a char is at least one byte).
        var rows = Rows(reader, maxCellBytes > 0 ? Math.Max(1, maxCellBytes / 2) : int.MaxValue).GetEnumerator();
        if (!rows.MoveNext()) yield break;
        var header = rows.Current.Fields;
        int Col(string name) => header.FindIndex(h => string.Equals(h.Trim(), name, StringComparison.OrdinalIgnoreCase));
        int ci = Col(f["instruction"]), cin = Col(f["input"]), co = Col(f["output"]), ct = Col(f["task"]);
        if (ci < 0 || co < 0)
            throw new DataFormatException($"{path}:1: the CSV header lacks column '{(ci < 0 ? f["instruction"] : f["output"])}' " +
                $"(header: {string.Join(",", header)})");
        var duplicate = header.Select(h => h.Trim()).GroupBy(h => h, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null)
            throw new DataFormatException($"{path}:1: the CSV header names column '{duplicate.Key}' {duplicate.Count()} times");
        int index = 0;
        while (rows.MoveNext())
        {
            var (line, row, error) = rows.Current;
            var src = new RecordSource(path, line, index++);
            if (error == null && row.Count != header.Count)
                error = $"row has {row.Count} columns, the header has {header.Count}";
            if (error != null) { yield return new LoadItem(null, new RecordRejection(src, null, RejectReason.BadCsvRow, error, string.Join(",", row))); continue; }
            yield return ToItem(row, src, ci, cin, co, ct, f, task);
        }
    }

    private static LoadItem ToItem(List<string> row, RecordSource src, int ci, int cin, int co, int ct, FieldMap f, string task)
    {
        string? Cell(int c) => c >= 0 && c < row.Count ? row[c] : null;
        RecordRejection Reject(string field, string reason, string msg) => new(src, field, reason, msg, string.Join(",", row));
        var instruction = Cell(ci);
        var output = Cell(co);
        if (instruction == null) return new(null, Reject(f["instruction"], RejectReason.MissingField, $"row has {row.Count} columns"));
        if (output == null) return new(null, Reject(f["output"], RejectReason.MissingField, $"row has {row.Count} columns"));
        foreach (var cell in row)
            if (cell.Contains('\uFFFD'))
                return new(null, Reject("(row)", RejectReason.InvalidUtf8, "row contains bytes that are not UTF-8"));
        if (string.IsNullOrWhiteSpace(instruction)) return new(null, Reject(f["instruction"], RejectReason.EmptyInstruction, "instruction is empty"));
        if (string.IsNullOrWhiteSpace(output)) return new(null, Reject(f["output"], RejectReason.EmptyOutput, "output is empty"));
        var label = Cell(ct);
        return new(new InstructionRecord(instruction, Cell(cin) ?? "", output, string.IsNullOrEmpty(label) ? task : label, src), null);
    }

    /// <summary>Yields (first line, fields, error) per row; a quote left open at end of file is an error row.</summary>
    private static IEnumerable<(int Line, List<string> Fields, string? Error)> Rows(TextReader reader, int maxCellChars)
    {
        var fields = new List<string>();
        var cell = new StringBuilder();
        int line = 1, rowLine = 1;
        bool inQuotes = false, quotedCell = false, any = false;
        int c;
        // Past the cap a cell keeps nothing more (not splitting a surrogate pair).
        void Append(char ch)
        {
            if (cell.Length < maxCellChars || (cell.Length == maxCellChars && char.IsLowSurrogate(ch) && char.IsHighSurrogate(cell[^1])))
                cell.Append(ch);
        }
        while ((c = reader.Read()) >= 0)
        {
            char ch = (char)c;
            if (inQuotes)
            {
                if (ch == '"')
                {
                    if (reader.Peek() == '"') { reader.Read(); cell.Append('"'); }
                    else inQuotes = false;
                }
                else { if (ch == '\n') line++; Append(ch); }
                continue;
            }
            switch (ch)
            {
                case '"' when cell.Length == 0 && !quotedCell: inQuotes = quotedCell = any = true; break;
                case ',': fields.Add(cell.ToString()); cell.Clear(); quotedCell = false; any = true; break;
                case '\r': break;
                case '\n':
                    if (any || cell.Length > 0 || fields.Count > 0)
                    {
                        fields.Add(cell.ToString());
                        yield return (rowLine, fields, null);
                        fields = [];
                    }
                    cell.Clear(); quotedCell = any = false;
                    rowLine = ++line;
                    break;
                default: Append(ch); any = true; break;
            }
        }
        if (inQuotes) { fields.Add(cell.ToString()); yield return (rowLine, fields, "the file ends inside a quoted field"); }
        else if (any || cell.Length > 0 || fields.Count > 0) { fields.Add(cell.ToString()); yield return (rowLine, fields, null); }
    }
}
