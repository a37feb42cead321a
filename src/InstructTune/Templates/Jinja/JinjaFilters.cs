using System.Globalization;
using System.Text;

namespace InstructTune.Templates.Jinja;

/// <summary>
/// jinja2's built-in filters that chat templates use, with transformers' tojson override
/// (json.dumps with ensure_ascii=False, indent, separators, sort_keys; no HTML escaping).
/// </summary>
public static class JinjaFilters
{
    private static readonly HashSet<string> Names =
        ["abs", "attr", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first", "float", "forceescape",
         "format", "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr",
         "replace", "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "unique",
         "upper", "wordcount", "batch", "groupby"];

    public static bool Exists(string name) => Names.Contains(name);

    public static object? Apply(string name, object? v, IReadOnlyList<object?> a, IReadOnlyDictionary<string, object?> k, Interpreter interp)
    {
        object? P(int i, string key, object? dflt = null) => i < a.Count ? a[i] : k.TryGetValue(key, out var x) ? x : dflt;
        switch (name)
        {
            case "default" or "d":
            {
                bool boolean = Py.Truthy(P(1, "boolean", false));
                return v is Undefined || (boolean && !Py.Truthy(v)) ? P(0, "default_value", "") : v;
            }
            case "length" or "count": return (long)Access.Length(v);
            case "string": return Py.StrValue(v);
            case "trim":
            {
                var chars = P(0, "chars");
                return Methods.Strip(Py.StrValue(v), chars is null ? null : Py.Text(chars), true, true);
            }
            case "upper": { var s = Py.StrValue(v); return TaggedText.Retext(s, PyCase.Upper(Py.Text(s))); }
            case "lower": { var s = Py.StrValue(v); return TaggedText.Retext(s, PyCase.Lower(Py.Text(s))); }
            case "capitalize":
            {
                var s = Py.StrValue(v); var t = Py.Text(s);
                return TaggedText.Retext(s, t.Length == 0 ? t : PyCase.Capitalize(t));
            }
            case "title": { var s = Py.StrValue(v); return TaggedText.Retext(s, Title(Py.Text(s))); }
            case "safe": return Py.StrValue(v);
            case "escape" or "e" or "forceescape": return Escape(Py.Str(v));
            case "replace":
                return Methods.Replace(Py.Str(v), Py.Str(P(0, "old")), Py.Str(P(1, "new")), P(2, "count") is null ? -1 : Py.ToLong(P(2, "count")));
            case "join":
            {
                var sep = P(0, "d", "")!;
                var attr = P(1, "attribute");
                var items = interp.Iterate(v);
                if (attr is not null) items = items.Select(x => AttrGetter(x, attr)).ToList();
                var parts = new List<object>();
                for (int i = 0; i < items.Count; i++)
                {
                    if (i > 0) parts.Add(Py.StrValue(sep));
                    parts.Add(Py.StrValue(items[i]));
                }
                return TaggedText.Concat(parts);
            }
            case "list": return interp.Iterate(v);
            case "items":
                if (v is Undefined) return new List<object?>();
                if (v is not Dictionary<object, object?> map) throw new TemplateRuntimeException("items filter: can only get item pairs from a mapping");
                return map.Select(kv => (object?)new JTuple([Py.FromKey(kv.Key), kv.Value])).ToList();
            case "first":
            {
                var items = interp.Iterate(v);
                return items.Count > 0 ? items[0] : new Undefined("No first item, sequence was empty.");
            }
            case "last":
            {
                var items = interp.Iterate(v);
                return items.Count > 0 ? items[^1] : new Undefined("No last item, sequence was empty.");
            }
            case "reverse":
                if (Py.IsString(v)) return Access.Slice(v, null, null, -1L);
                { var items = interp.Iterate(v); items.Reverse(); return items; }
            case "sort":
            {
                bool reverse = Py.Truthy(P(0, "reverse", false)), cs = Py.Truthy(P(1, "case_sensitive", false));
                var attr = P(2, "attribute");
                var items = interp.Iterate(v);
                var keyed = items.Select(x => (Item: x, Key: SortKey(attr is null ? x : AttrGetter(x, attr), cs))).ToList();
                var sorted = Sort(keyed, reverse);
                return sorted.Select(p => p.Item).ToList();
            }
            case "dictsort":
            {
                bool cs = Py.Truthy(P(0, "case_sensitive", false));
                string by = Py.Str(P(1, "by", "key"));
                bool reverse = Py.Truthy(P(2, "reverse", false));
                if (v is not Dictionary<object, object?> dict) throw new TemplateRuntimeException("dictsort: expected a mapping");
                var pairs = dict.Select(kv => (Item: (object?)new JTuple([Py.FromKey(kv.Key), kv.Value]),
                    Key: SortKey(by == "value" ? kv.Value : Py.FromKey(kv.Key), cs))).ToList();
                return Sort(pairs, reverse).Select(p => p.Item).ToList();
            }
            case "unique":
            {
                bool cs = Py.Truthy(P(0, "case_sensitive", false));
                var attr = P(1, "attribute");
                var seen = new List<object?>();
                var result = new List<object?>();
                foreach (var x in interp.Iterate(v))
                {
                    var key = SortKey(attr is null ? x : AttrGetter(x, attr), cs);
                    Py.Key(key); // Python keeps a set of seen keys: lists and dicts are unhashable
                    if (seen.Any(s => Py.Eq(s, key))) continue;
                    seen.Add(key);
                    result.Add(x);
                }
                return result;
            }
            case "min" or "max":
            {
                bool cs = Py.Truthy(P(0, "case_sensitive", false));
                var attr = P(1, "attribute");
                var items = interp.Iterate(v);
                if (items.Count == 0) return new Undefined($"No aggregated item, sequence was empty.");
                var keyed = Sort(items.Select(x => (Item: x, Key: SortKey(attr is null ? x : AttrGetter(x, attr), cs))).ToList(), false);
                return name == "min" ? keyed[0].Item : keyed[^1].Item;
            }
            case "sum":
            {
                var attr = P(0, "attribute");
                object? total = P(1, "start", 0L);
                foreach (var x in interp.Iterate(v)) total = Operators.Binary("+", total, attr is null ? x : AttrGetter(x, attr), interp.Limits);
                return total;
            }
            case "abs": return v switch { long l => (object)Math.Abs(l), double dd => Math.Abs(dd), bool b => b ? 1L : 0L, _ => throw new TemplateRuntimeException($"bad operand type for abs(): '{Py.TypeName(v)}'") };
            case "int" or "float" when v is Undefined ud: throw new TemplateRuntimeException(ud.Hint);
            case "int": return ToInt(v, P(0, "default", 0L), Py.ToLong(P(1, "base", 10L)));
            case "float": return ToFloat(v, P(0, "default", 0.0));
            case "round":
            {
                if (v is long or bool && P(1, "method", "common") is "common") return Py.ToLong(v); // Python round(int, n) is an int
                long precision = Py.ToLong(P(0, "precision", 0L));
                string method = Py.Str(P(1, "method", "common"));
                double x = Py.ToDouble(v), scale = Math.Pow(10, precision);
                return method switch
                {
                    // Python round(): half to even.
                    "common" => precision >= 0 && precision <= 15 ? Math.Round(x, (int)precision, MidpointRounding.ToEven) : Math.Round(x * scale) / scale,
                    "ceil" => Math.Ceiling(x * scale) / scale,
                    "floor" => Math.Floor(x * scale) / scale,
                    _ => throw new TemplateRuntimeException("method must be common, ceil or floor"),
                };
            }
            case "tojson": return ToJson(v, a, k);
            case "indent":
                if (v is Undefined ui) throw new TemplateRuntimeException(ui.Hint);
                if (!Py.IsString(v)) throw new TemplateRuntimeException($"unsupported operand type(s) for +=: '{Py.TypeName(v)}' and 'str'");
                return Indent(Py.Text(v), P(0, "width", 4L), Py.Truthy(P(1, "first", false)), Py.Truthy(P(2, "blank", false)));
            case "center": return Center(Py.Str(v), Methods.Width(P(0, "width", 80L), "center"));
            case "wordcount": return (long)WordCount(Py.Str(v));
            case "format": return Operators.Binary("%", Py.Str(v), a.Count == 1 ? a[0] : new JTuple([.. a]), interp.Limits);
            // jinja2's attr looks at attributes only (methods, namespace/loop attributes), never at dict items.
            case "attr":
                return v is Dictionary<object, object?> || Py.IsString(v) || v is List<object?> or JTuple
                    ? (object?)Methods.Bind(v, Py.Text(P(0, "name"))) ?? new Undefined($"'{Py.TypeName(v)} object' has no attribute '{Py.Text(P(0, "name"))}'")
                    : Access.GetAttr(v, Py.Text(P(0, "name")));
            // jinja2 returns nothing at all for a falsy sequence (`if seq:`), even a non-iterable one.
            case "map" or "select" or "reject" or "selectattr" or "rejectattr" when !Py.Truthy(v): return new List<object?>();
            case "map": return Map(v, a, k, interp);
            case "select" or "reject":
                return SelectOrReject(v, a, name == "select", null, interp);
            case "selectattr" or "rejectattr":
                if (a.Count == 0) throw new TemplateRuntimeException($"{name} needs an attribute name");
                return SelectOrReject(v, a.Skip(1).ToList(), name == "selectattr", a[0], interp);
            case "batch":
            {
                long size = Py.ToLong(P(0, "linecount"));
                var fill = P(1, "fill_with");
                var items = interp.Iterate(v);
                var result = new List<object?>();
                for (int i = 0; i < items.Count; i += (int)size)
                {
                    var chunk = items.Skip(i).Take((int)size).ToList();
                    if (fill is not null) while (chunk.Count < size) chunk.Add(fill);
                    result.Add(chunk);
                }
                return result;
            }
            default:
                throw new TemplateRuntimeException($"no filter named '{name}'");
        }
    }

    private static object? AttrGetter(object? item, object? attribute)
    {
        if (attribute is long) return Access.GetItem(item, attribute);
        object? cur = item;
        foreach (var part in Py.Text(attribute).Split('.'))
            cur = long.TryParse(part, out var idx) ? Access.GetItem(cur, idx) : Access.GetItem(cur, part);
        return cur;
    }

    private static object? SortKey(object? x, bool caseSensitive) =>
        !caseSensitive && Py.IsString(x) ? PyCase.Lower(Py.Text(x)) : x;

    private static List<(object? Item, object? Key)> Sort(List<(object? Item, object? Key)> items, bool reverse)
    {
        // Stable sort, as Python's sorted().
        var indexed = items.Select((p, i) => (p, i)).ToList();
        indexed.Sort((x, y) =>
        {
            int c = Py.Compare(x.p.Key, y.p.Key, "<");
            if (reverse) c = -c;
            return c != 0 ? c : x.i.CompareTo(y.i);
        });
        return indexed.Select(x => x.p).ToList();
    }

    private static List<object?> Map(object? v, IReadOnlyList<object?> a, IReadOnlyDictionary<string, object?> k, Interpreter interp)
    {
        var items = interp.Iterate(v);
        if (k.TryGetValue("attribute", out var attr))
        {
            k.TryGetValue("default", out var dflt);
            return items.Select(x =>
            {
                var r = AttrGetter(x, attr);
                return r is Undefined && k.ContainsKey("default") ? dflt : r;
            }).ToList();
        }
        if (a.Count == 0) throw new TemplateRuntimeException("map: give a filter name or attribute=");
        string filter = Py.Text(a[0]);
        var rest = a.Skip(1).ToList();
        return items.Select(x => Apply(filter, x, rest, k, interp)).ToList();
    }

    private static List<object?> SelectOrReject(object? v, IReadOnlyList<object?> a, bool select, object? attribute, Interpreter interp)
    {
        var result = new List<object?>();
        foreach (var item in interp.Iterate(v))
        {
            var x = attribute is null ? item : AttrGetter(item, attribute);
            bool ok = a.Count == 0 ? Py.Truthy(x) : JinjaTests.Apply(Py.Text(a[0]), x, a.Skip(1).ToList(), interp);
            if (ok == select) result.Add(item);
        }
        return result;
    }

    private static string ToJson(object? v, IReadOnlyList<object?> a, IReadOnlyDictionary<string, object?> k)
    {
        // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) → json.dumps.
        object? P(int i, string key) => i < a.Count ? a[i] : k.GetValueOrDefault(key);
        bool ensureAscii = Py.Truthy(P(0, "ensure_ascii"));
        var indentArg = P(1, "indent");
        string? indent = indentArg switch
        {
            null => null,
            long n => new string(' ', (int)Math.Max(0, n)),
            bool b => b ? " " : "",
            _ when Py.IsString(indentArg) => Py.Text(indentArg),
            _ => throw new TemplateRuntimeException("tojson: indent must be an int or a string"),
        };
        var seps = Py.AsSeq(P(2, "separators"));
        var o = new PyJson.Options(ensureAscii, indent,
            seps is not null ? Py.Text(seps[0]) : indent is null ? ", " : ",",
            seps is not null ? Py.Text(seps[1]) : ": ",
            Py.Truthy(P(3, "sort_keys")));
        return PyJson.Dumps(v, o);
    }

    /// <summary>jinja2's title: each word (split at whitespace and -([{&lt;) is word[0].upper() + word[1:].lower().</summary>
    private static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        int i = 0;
        while (i < s.Length)
        {
            int st = i;
            if (IsTitleSeparator(s[i])) { while (i < s.Length && IsTitleSeparator(s[i])) i++; sb.Append(s, st, i - st); continue; }
            while (i < s.Length && !IsTitleSeparator(s[i])) i++;
            int firstLen = char.IsHighSurrogate(s[st]) && st + 1 < i ? 2 : 1;
            sb.Append(PyCase.Upper(s.Substring(st, firstLen))).Append(PyCase.Lower(s.Substring(st + firstLen, i - st - firstLen)));
        }
        return sb.ToString();
    }

    private static bool IsTitleSeparator(char c) => Array.IndexOf(JinjaLexer.PyWhitespace, c) >= 0 || c is '-' or '(' or '{' or '[' or '<';

    /// <summary>jinja2's wordcount: runs of \w (letters, digits, marks, underscore).</summary>
    private static int WordCount(string s)
    {
        int count = 0;
        bool inWord = false;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            bool w = char.IsLetterOrDigit(c) || c == '_' || char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.NonSpacingMark
                or System.Globalization.UnicodeCategory.SpacingCombiningMark or System.Globalization.UnicodeCategory.LetterNumber
                or System.Globalization.UnicodeCategory.OtherNumber;
            if (w && !inWord) count++;
            inWord = w;
        }
        return count;
    }

    private static string Escape(string s) =>
        s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&#34;").Replace("'", "&#39;");

    /// <summary>jinja2's indent(width, first, blank): indents every line after the first; blank lines only with blank=True.</summary>
    private static string Indent(string s, object? width, bool first, bool blank)
    {
        // Every line gets the indent: refuse widths × lines beyond the size limit before building anything.
        long lineCount = 1 + s.Count(c => c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029');
        long indentLength = Py.IsString(width) ? Py.Text(width).Length : Math.Max(0, Py.ToLong(width));
        Interpreter.CheckSize(s.Length + lineCount * indentLength, "indent");
        string ind = Py.IsString(width) ? Py.Text(width) : new string(' ', (int)indentLength);
        s += "\n";
        var lines = new List<string>();
        int st = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] is not ('\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')) continue;
            lines.Add(s[st..i]);
            if (s[i] == '\r' && i + 1 < s.Length && s[i + 1] == '\n') i++;
            st = i + 1;
        }
        if (st < s.Length) lines.Add(s[st..]);
        string rv;
        if (blank) rv = string.Join("\n" + ind, lines);
        else
        {
            rv = lines[0];
            if (lines.Count > 1) rv += "\n" + string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? ind + l : l));
        }
        return first ? ind + rv : rv;
    }

    /// <summary>Python str.center.</summary>
    public static string Center(string s, int width)
    {
        int pad = width - CodePoints.Length(s);
        if (pad <= 0) return s;
        int left = pad / 2 + (pad & width & 1);
        return new string(' ', left) + s + new string(' ', pad - left);
    }

    private static object? ToInt(object? v, object? dflt, long numberBase)
    {
        switch (v)
        {
            case long or bool: return Py.ToLong(v);
            case double d: return double.IsFinite(d) ? (long)Math.Truncate(d) : dflt;
            case string or TaggedText:
            {
                // Python int(): surrounding whitespace allowed, underscores only between digits.
                var t = Py.Text(v).Trim(JinjaLexer.PyWhitespace);
                if (System.Text.RegularExpressions.Regex.IsMatch(t, @"^[+-]?[0-9A-Za-z]+(_[0-9A-Za-z]+)*$"))
                {
                    try { return Convert.ToInt64(t.Replace("_", ""), (int)numberBase); }
                    catch (Exception e) when (e is FormatException or OverflowException or ArgumentException) { }
                }
                if (t.Contains("__") || t.StartsWith('_') || t.EndsWith('_')) return dflt;
                t = t.Replace("_", "");
                if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var f)) return (long)Math.Truncate(f);
                return dflt;
            }
            default: return dflt;
        }
    }

    private static object? ToFloat(object? v, object? dflt) => v switch
    {
        long or bool => Py.ToDouble(v),
        double => v,
        string or TaggedText => double.TryParse(Py.Text(v).Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var f) ? f : dflt,
        _ => dflt,
    };
}
