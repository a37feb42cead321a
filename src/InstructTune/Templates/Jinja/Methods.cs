using System.Text;

namespace InstructTune.Templates.Jinja;

/// <summary>
/// The Python str / dict / list methods templates call (message.content.strip(), messages[0].get('x'),
/// text.split('\n') …). Methods that only cut a string (strip, split, partition) keep provenance.
/// </summary>
public static class Methods
{
    /// <summary>A bound method of <paramref name="target"/>, or null when it has none by that name.</summary>
    public static BuiltinFunction? Bind(object? target, string name)
    {
        Func<IReadOnlyList<object?>, IReadOnlyDictionary<string, object?>, object?>? f = target switch
        {
            string or TaggedText => StringMethod(target, name),
            Dictionary<object, object?> d => DictMethod(d, name),
            List<object?> or JTuple => SeqMethod(Py.AsSeq(target)!, name),
            _ => null,
        };
        return f is null ? null : new BuiltinFunction(name, (_, a, k) => f(a, k));
    }

    private static object? Arg(IReadOnlyList<object?> a, int i, object? dflt = null) => i < a.Count ? a[i] : dflt;

    private static Func<IReadOnlyList<object?>, IReadOnlyDictionary<string, object?>, object?>? DictMethod(Dictionary<object, object?> d, string name) => name switch
    {
        "items" => (_, _) => d.Select(kv => (object?)new JTuple([Py.FromKey(kv.Key), kv.Value])).ToList(),
        "keys" => (_, _) => d.Keys.Select(Py.FromKey).ToList(),
        "values" => (_, _) => d.Values.ToList(),
        "get" => (a, _) => d.TryGetValue(Py.Key(Arg(a, 0)), out var v) ? v : Arg(a, 1),
        "copy" => (_, _) => new Dictionary<object, object?>(d),
        _ => null,
    };

    private static Func<IReadOnlyList<object?>, IReadOnlyDictionary<string, object?>, object?>? SeqMethod(IReadOnlyList<object?> l, string name) => name switch
    {
        "index" => (a, _) =>
        {
            for (int i = 0; i < l.Count; i++) if (Py.Eq(l[i], Arg(a, 0))) return (long)i;
            throw new TemplateRuntimeException($"{Py.Repr(Arg(a, 0))} is not in list");
        },
        "count" => (a, _) => (long)l.Count(x => Py.Eq(x, Arg(a, 0))),
        "copy" => (_, _) => l.ToList(),
        _ => null,
    };

    private static Func<IReadOnlyList<object?>, IReadOnlyDictionary<string, object?>, object?>? StringMethod(object s, string name)
    {
        string t = Py.Text(s);
        return name switch
        {
            "strip" => (a, _) => Strip(s, CharsArg(a), true, true),
            "lstrip" => (a, _) => Strip(s, CharsArg(a), true, false),
            "rstrip" => (a, _) => Strip(s, CharsArg(a), false, true),
            "upper" => (_, _) => TaggedText.Retext(s, PyCase.Upper(t)),
            "lower" => (_, _) => TaggedText.Retext(s, PyCase.Lower(t)),
            "title" => (_, _) => TaggedText.Retext(s, PyTitle(t)),
            "capitalize" => (_, _) => TaggedText.Retext(s, t.Length == 0 ? t : PyCase.Capitalize(t)),
            "swapcase" => (_, _) => TaggedText.Retext(s, string.Concat(t.Select(c =>
                char.IsUpper(c) ? PyCase.Lower(c.ToString()) : char.IsLower(c) ? PyCase.Upper(c.ToString()) : c.ToString()))),
            "startswith" => (a, _) => Prefixes(Arg(a, 0)).Any(p => t.StartsWith(p, StringComparison.Ordinal)),
            "endswith" => (a, _) => Prefixes(Arg(a, 0)).Any(p => t.EndsWith(p, StringComparison.Ordinal)),
            "split" => (a, k) => Split(s, Arg(a, 0, k.GetValueOrDefault("sep")), Py.ToLong(Arg(a, 1, k.GetValueOrDefault("maxsplit") ?? -1L))),
            "rsplit" => (a, k) => RSplit(s, Arg(a, 0, k.GetValueOrDefault("sep")), Py.ToLong(Arg(a, 1, k.GetValueOrDefault("maxsplit") ?? -1L))),
            "splitlines" => (_, _) => SplitLines(s),
            "replace" => (a, _) => Replace(t, Py.Text(Arg(a, 0)), Py.Text(Arg(a, 1)), Py.ToLong(Arg(a, 2, -1L))),
            "find" => (a, _) => (long)CodePoints.IndexOf(t, t.IndexOf(Py.Text(Arg(a, 0)), StringComparison.Ordinal)),
            "rfind" => (a, _) => (long)CodePoints.IndexOf(t, RFind(t, Py.Text(Arg(a, 0)))),
            "index" => (a, _) =>
            {
                int i = t.IndexOf(Py.Text(Arg(a, 0)), StringComparison.Ordinal);
                return i >= 0 ? (long)CodePoints.IndexOf(t, i) : throw new TemplateRuntimeException("substring not found");
            },
            "count" => (a, _) => (long)CountOccurrences(t, Py.Text(Arg(a, 0))),
            "join" => (a, _) => JoinWith(s, Arg(a, 0)),
            "format" => (a, k) => Format(t, a, k),
            "isdigit" or "isnumeric" or "isdecimal" => (_, _) => t.Length > 0 && t.All(char.IsDigit),
            "isalpha" => (_, _) => t.Length > 0 && t.All(char.IsLetter),
            "isalnum" => (_, _) => t.Length > 0 && t.All(char.IsLetterOrDigit),
            "isspace" => (_, _) => t.Length > 0 && t.All(c => Array.IndexOf(JinjaLexer.PyWhitespace, c) >= 0),
            "isupper" => (_, _) => IsUpper(t),
            "islower" => (_, _) => IsLower(t),
            "zfill" => (a, _) => ZFill(t, Width(Arg(a, 0), "zfill")),
            "ljust" => (a, _) => t + new string(Arg(a, 1) is null ? ' ' : Py.Text(Arg(a, 1))[0], Math.Max(0, Width(Arg(a, 0), "ljust") - CodePoints.Length(t))),
            "rjust" => (a, _) => new string(Arg(a, 1) is null ? ' ' : Py.Text(Arg(a, 1))[0], Math.Max(0, Width(Arg(a, 0), "rjust") - CodePoints.Length(t))) + t,
            "center" => (a, _) => JinjaFilters.Center(t, Width(Arg(a, 0), "center")),
            "partition" => (a, _) => Partition(s, Py.Text(Arg(a, 0)), last: false),
            "rpartition" => (a, _) => Partition(s, Py.Text(Arg(a, 0)), last: true),
            "removeprefix" => (a, _) => t.StartsWith(Py.Text(Arg(a, 0)), StringComparison.Ordinal) ? TaggedText.Slice(s, Py.Text(Arg(a, 0)).Length, t.Length - Py.Text(Arg(a, 0)).Length) : s,
            "removesuffix" => (a, _) => Py.Text(Arg(a, 0)).Length > 0 && t.EndsWith(Py.Text(Arg(a, 0)), StringComparison.Ordinal) ? TaggedText.Slice(s, 0, t.Length - Py.Text(Arg(a, 0)).Length) : s,
            _ => null,
        };
    }

    /// <summary>Python str.isupper/islower: some cased character and none of the other case.</summary>
    public static bool IsUpper(string t) => t.Any(IsCased) && !t.Any(c => char.IsLower(c) || IsTitlecase(c));
    public static bool IsLower(string t) => t.Any(IsCased) && !t.Any(c => char.IsUpper(c) || IsTitlecase(c));
    private static bool IsTitlecase(char c) => char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.TitlecaseLetter;
    private static bool IsCased(char c) => char.IsUpper(c) || char.IsLower(c) || IsTitlecase(c);

    private static int RFind(string t, string sub) => sub.Length == 0 ? t.Length : t.LastIndexOf(sub, StringComparison.Ordinal);

    /// <summary>A padding width, refused before any allocation when it exceeds the size limit.</summary>
    internal static int Width(object? arg, string what) => Interpreter.CheckSize(Py.ToLong(arg), what);

    /// <summary>Python zfill: zeros after a leading sign, width in code points.</summary>
    private static string ZFill(string t, int width)
    {
        int pad = width - CodePoints.Length(t);
        if (pad <= 0) return t;
        int signLen = t.Length > 0 && t[0] is '+' or '-' ? 1 : 0;
        return t[..signLen] + new string('0', pad) + t[signLen..];
    }

    private static string? CharsArg(IReadOnlyList<object?> a) => Arg(a, 0) is null ? null : Py.Text(Arg(a, 0));

    private static IEnumerable<string> Prefixes(object? arg) =>
        arg is JTuple t ? t.Items.Select(Py.Text) : [Py.Text(arg)];

    /// <summary>str.strip([chars]); without chars strips Python whitespace. Keeps provenance.</summary>
    public static object Strip(object s, string? chars, bool left, bool right)
    {
        string t = Py.Text(s);
        bool IsStripped(char c) => chars is null ? Array.IndexOf(JinjaLexer.PyWhitespace, c) >= 0 : chars.Contains(c);
        int a = 0, b = t.Length;
        if (left) while (a < b && IsStripped(t[a])) a++;
        if (right) while (b > a && IsStripped(t[b - 1])) b--;
        return TaggedText.Slice(s, a, b - a);
    }

    private static List<object?> Split(object s, object? sep, long maxsplit)
    {
        string t = Py.Text(s);
        var parts = new List<object?>();
        if (sep is null)
        {
            // Whitespace split: runs of whitespace separate, empty strings dropped.
            int i = 0;
            while (true)
            {
                while (i < t.Length && Array.IndexOf(JinjaLexer.PyWhitespace, t[i]) >= 0) i++;
                if (i >= t.Length) break;
                if (maxsplit >= 0 && parts.Count == maxsplit)
                {
                    // Python keeps the remainder as is, trailing whitespace included.
                    parts.Add(TaggedText.Slice(s, i, t.Length - i));
                    break;
                }
                int st = i;
                while (i < t.Length && Array.IndexOf(JinjaLexer.PyWhitespace, t[i]) < 0) i++;
                parts.Add(TaggedText.Slice(s, st, i - st));
            }
            return parts;
        }
        string d = Py.Text(sep);
        if (d.Length == 0) throw new TemplateRuntimeException("empty separator");
        int pos = 0;
        while (maxsplit < 0 || parts.Count < maxsplit)
        {
            int k = t.IndexOf(d, pos, StringComparison.Ordinal);
            if (k < 0) break;
            parts.Add(TaggedText.Slice(s, pos, k - pos));
            pos = k + d.Length;
        }
        parts.Add(TaggedText.Slice(s, pos, t.Length - pos));
        return parts;
    }

    private static List<object?> RSplit(object s, object? sep, long maxsplit)
    {
        if (maxsplit < 0) return Split(s, sep, maxsplit);
        string t = Py.Text(s);
        if (sep is null)
        {
            // Mirror of the whitespace split, from the right; the remainder keeps its leading whitespace.
            var rparts = new List<object?>();
            int j = t.Length;
            while (true)
            {
                while (j > 0 && Array.IndexOf(JinjaLexer.PyWhitespace, t[j - 1]) >= 0) j--;
                if (j <= 0) break;
                if (rparts.Count == maxsplit) { rparts.Insert(0, TaggedText.Slice(s, 0, j)); break; }
                int en = j;
                while (j > 0 && Array.IndexOf(JinjaLexer.PyWhitespace, t[j - 1]) < 0) j--;
                rparts.Insert(0, TaggedText.Slice(s, j, en - j));
            }
            return rparts;
        }
        string d = Py.Text(sep);
        var parts = new List<object?>();
        int end = t.Length;
        while (parts.Count < maxsplit)
        {
            int k = end - d.Length >= 0 ? t.LastIndexOf(d, end - 1, end, StringComparison.Ordinal) : -1;
            if (k < 0) break;
            parts.Insert(0, TaggedText.Slice(s, k + d.Length, end - k - d.Length));
            end = k;
        }
        parts.Insert(0, TaggedText.Slice(s, 0, end));
        return parts;
    }

    private static List<object?> SplitLines(object s)
    {
        string t = Py.Text(s);
        var parts = new List<object?>();
        int st = 0;
        for (int i = 0; i < t.Length; i++)
        {
            char c = t[i];
            if (c is not ('\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029')) continue;
            parts.Add(TaggedText.Slice(s, st, i - st));
            if (c == '\r' && i + 1 < t.Length && t[i + 1] == '\n') i++;
            st = i + 1;
        }
        if (st < t.Length) parts.Add(TaggedText.Slice(s, st, t.Length - st));
        return parts;
    }

    private static JTuple Partition(object s, string sep, bool last)
    {
        string t = Py.Text(s);
        int k = last ? t.LastIndexOf(sep, StringComparison.Ordinal) : t.IndexOf(sep, StringComparison.Ordinal);
        if (k < 0) return last ? new JTuple(["", "", s]) : new JTuple([s, "", ""]);
        return new JTuple([TaggedText.Slice(s, 0, k), sep, TaggedText.Slice(s, k + sep.Length, t.Length - k - sep.Length)]);
    }

    public static string Replace(string t, string old, string @new, long count)
    {
        if (count < 0) count = long.MaxValue;
        // The result's size is known before building it: refuse a replacement that outgrows the size limit.
        long hits = CountOccurrences(t, old);
        Interpreter.CheckSize(t.Length + Math.Min(hits, count) * (@new.Length - (long)old.Length), "replace");
        var sb = new StringBuilder();
        int pos = 0, done = 0;
        if (old.Length == 0)
        {
            // Python inserts the replacement before every character and at the end.
            for (int i = 0; i <= t.Length; i++)
            {
                if (done < count) { sb.Append(@new); done++; }
                if (i < t.Length) sb.Append(t[i]);
            }
            return sb.ToString();
        }
        while (done < count)
        {
            int k = t.IndexOf(old, pos, StringComparison.Ordinal);
            if (k < 0) break;
            sb.Append(t, pos, k - pos).Append(@new);
            pos = k + old.Length;
            done++;
        }
        return sb.Append(t, pos, t.Length - pos).ToString();
    }

    private static int CountOccurrences(string t, string sub)
    {
        if (sub.Length == 0) return t.Length + 1;
        int n = 0;
        for (int k = t.IndexOf(sub, StringComparison.Ordinal); k >= 0; k = t.IndexOf(sub, k + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    private static object JoinWith(object sep, object? items)
    {
        var parts = new List<object>();
        bool first = true;
        foreach (var item in Py.AsSeq(items) ?? throw new TemplateRuntimeException("join() expects a list of strings"))
        {
            if (!Py.IsString(item)) throw new TemplateRuntimeException($"sequence item: expected str instance, {Py.TypeName(item)} found");
            if (!first) parts.Add(sep);
            parts.Add(item!);
            first = false;
        }
        return TaggedText.Concat(parts);
    }

    /// <summary>str.format with {} / {0} / {name} fields (no format specs beyond plain substitution).</summary>
    private static string Format(string t, IReadOnlyList<object?> a, IReadOnlyDictionary<string, object?> k)
    {
        var sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < t.Length; i++)
        {
            char c = t[i];
            if (c == '{' && i + 1 < t.Length && t[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < t.Length && t[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c != '{') { sb.Append(c); continue; }
            int close = t.IndexOf('}', i);
            if (close < 0) throw new TemplateRuntimeException("single '{' encountered in format string");
            var field = t[(i + 1)..close];
            int colon = field.IndexOf(':');
            if (colon >= 0) field = field[..colon];
            object? v = field.Length == 0 ? Arg(a, auto++)
                : int.TryParse(field, out int idx) ? Arg(a, idx)
                : k.TryGetValue(field, out var kv) ? kv : throw new TemplateRuntimeException($"KeyError: '{field}'");
            sb.Append(Py.Str(v));
            i = close;
        }
        return sb.ToString();
    }

    /// <summary>Python str.title(): a cased letter after an uncased one is title-cased (ß → Ss), others lower-cased.</summary>
    public static string PyTitle(string t)
    {
        var sb = new StringBuilder(t.Length);
        bool prevCased = false;
        foreach (var c in t)
        {
            bool titlecase = char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.TitlecaseLetter;
            if (prevCased) sb.Append(PyCase.Lower(c.ToString()));
            else if (titlecase) sb.Append(c);
            else sb.Append(PyCase.Capitalize(c.ToString()));
            prevCased = char.IsUpper(c) || char.IsLower(c) || titlecase;
        }
        return sb.ToString();
    }
}
