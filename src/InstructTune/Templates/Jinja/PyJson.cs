using System.Globalization;
using System.Text;

namespace InstructTune.Templates.Jinja;

/// <summary>
/// Python's json.dumps as transformers' tojson filter calls it (ensure_ascii=False, indent, separators,
/// sort_keys): ", " / ": " separators without indent, "," / ": " with it; floats as Python repr.
/// </summary>
public static class PyJson
{
    public sealed record Options(bool EnsureAscii = false, string? Indent = null, string ItemSeparator = ", ", string KeySeparator = ": ", bool SortKeys = false);

    public static string Dumps(object? value, Options o)
    {
        var sb = new StringBuilder();
        Write(sb, value, o, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, object? v, Options o, int level)
    {
        if (level > 200) throw new TemplateRuntimeException("tojson: value nested too deeply");
        if (sb.Length > Interpreter.ActiveMaxOutput)
            throw new TemplateRuntimeException($"tojson output exceeds the size limit of {Interpreter.ActiveMaxOutput} characters");
        switch (v)
        {
            case null: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsPositiveInfinity(d) ? "Infinity" : double.IsNegativeInfinity(d) ? "-Infinity" : Py.FloatRepr(d));
                break;
            case string or TaggedText: WriteString(sb, Py.Text(v), o.EnsureAscii); break;
            case List<object?> or JTuple:
            {
                var items = Py.AsSeq(v)!;
                if (items.Count == 0) { sb.Append("[]"); break; }
                sb.Append('[');
                for (int i = 0; i < items.Count; i++)
                {
                    if (i > 0) sb.Append(o.ItemSeparator);
                    NewLine(sb, o, level + 1);
                    Write(sb, items[i], o, level + 1);
                }
                NewLine(sb, o, level);
                sb.Append(']');
                break;
            }
            case Dictionary<object, object?> d:
            {
                if (d.Count == 0) { sb.Append("{}"); break; }
                IEnumerable<KeyValuePair<object, object?>> entries = d;
                if (o.SortKeys) entries = d.OrderBy(kv => KeyText(kv.Key), StringComparer.Ordinal);
                sb.Append('{');
                bool first = true;
                foreach (var (k, val) in entries)
                {
                    if (!first) sb.Append(o.ItemSeparator);
                    first = false;
                    NewLine(sb, o, level + 1);
                    WriteString(sb, KeyText(k), o.EnsureAscii);
                    sb.Append(o.KeySeparator);
                    Write(sb, val, o, level + 1);
                }
                NewLine(sb, o, level);
                sb.Append('}');
                break;
            }
            default:
                throw new TemplateRuntimeException($"Object of type {Py.TypeName(v)} is not JSON serializable");
        }
    }

    private static string KeyText(object k) => Py.FromKey(k) switch
    {
        null => "null",
        bool b => b ? "true" : "false",
        double d => Py.FloatRepr(d),
        var x when Py.IsString(x) => Py.Text(x),
        long l => l.ToString(CultureInfo.InvariantCulture),
        var x => throw new TemplateRuntimeException($"keys must be str, int, float, bool or None, not {Py.TypeName(x)}"),
    };

    private static void NewLine(StringBuilder sb, Options o, int level)
    {
        if (o.Indent is null) return;
        sb.Append('\n');
        for (int i = 0; i < level; i++) sb.Append(o.Indent);
    }

    /// <summary>A string as Python's <c>json.dumps</c> writes it (ensure_ascii escapes everything outside ' '..'~').</summary>
    public static string DumpsString(string s, bool ensureAscii = true)
    {
        var sb = new StringBuilder(s.Length + 2);
        WriteString(sb, s, ensureAscii);
        return sb.ToString();
    }

    private static void WriteString(StringBuilder sb, string s, bool ensureAscii)
    {
        sb.Append('"');
        foreach (var c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20 || (ensureAscii && c > 0x7e)) sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
