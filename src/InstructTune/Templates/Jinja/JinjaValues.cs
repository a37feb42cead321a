using System.Globalization;
using System.Text;

namespace InstructTune.Templates.Jinja;

// The interpreter's value model mirrors the Python objects jinja2 sees:
//   null            → None
//   bool            → bool
//   long / double   → int / float
//   string, TaggedText → str (TaggedText carries message provenance)
//   List<object?>   → list;   JTuple → tuple
//   Dictionary<object, object?> (insertion ordered) → dict
//   Undefined, Namespace, LoopInfo, ICallableValue → jinja2 runtime objects

/// <summary>jinja2's default Undefined: prints empty, is falsy, iterates as empty; most other uses raise.</summary>
public sealed class Undefined(string hint)
{
    /// <summary>What was missing, as jinja2 words it ("'x' is undefined", "'dict object' has no attribute 'y'").</summary>
    public string Hint { get; } = hint;
    public override string ToString() => "";
}

/// <summary>An immutable tuple.</summary>
public sealed class JTuple(IReadOnlyList<object?> items)
{
    public IReadOnlyList<object?> Items { get; } = items;
}

/// <summary>The object returned by namespace(): attributes may be assigned with {% set ns.x = … %}.</summary>
public sealed class Namespace
{
    public Dictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}

/// <summary>Anything callable from a template: macros, globals such as range(), bound string/dict methods.</summary>
public interface ICallableValue
{
    object? Call(Interpreter interp, IReadOnlyList<object?> args, IReadOnlyDictionary<string, object?> kwargs);
}

/// <summary>A host function exposed to templates.</summary>
public sealed class BuiltinFunction(string name, Func<Interpreter, IReadOnlyList<object?>, IReadOnlyDictionary<string, object?>, object?> body) : ICallableValue
{
    public string Name { get; } = name;
    public object? Call(Interpreter interp, IReadOnlyList<object?> args, IReadOnlyDictionary<string, object?> kwargs) => body(interp, args, kwargs);
}

/// <summary>The `loop` variable of a for loop.</summary>
public sealed class LoopInfo(IReadOnlyList<object?> items)
{
    public IReadOnlyList<object?> Items { get; } = items;
    public int Index0 { get; set; }
    public int Depth0 { get; init; }
    public object? LastChangedArgs { get; set; } = NotSet;
    internal static readonly object NotSet = new();
}

/// <summary>Raised by the template (raise_exception), by limits, or by a runtime error; becomes a ChatTemplateException.</summary>
public sealed class TemplateRuntimeException(string message) : InstructTune.Common.InputException(message);

/// <summary>Python semantics for the value model: truthiness, str(), repr(), equality and ordering.</summary>
public static class Py
{
    public static bool IsString(object? v) => v is string or TaggedText;
    public static string Text(object? v) => v is TaggedText t ? t.Text : (string)v!;

    public static bool Truthy(object? v) => v switch
    {
        null => false,
        Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        TaggedText t => t.Text.Length > 0,
        List<object?> l => l.Count > 0,
        JTuple t => t.Items.Count > 0,
        Dictionary<object, object?> d => d.Count > 0,
        _ => true,
    };

    /// <summary>str(v) with provenance kept for strings.</summary>
    public static object StrValue(object? v) => v is TaggedText t ? t : Str(v);

    /// <summary>Python str().</summary>
    public static string Str(object? v) => v switch
    {
        null => "None",
        Undefined => "",
        string s => s,
        TaggedText t => t.Text,
        _ => Repr(v),
    };

    /// <summary>Python repr().</summary>
    public static string Repr(object? v)
    {
        var sb = new StringBuilder();
        AppendRepr(sb, v, 0);
        return sb.ToString();
    }

    private static void AppendRepr(StringBuilder sb, object? v, int depth)
    {
        if (depth > 100) throw new TemplateRuntimeException("value nested too deeply to print");
        // Shared sub-lists can make a small value print exponentially large: stop at the output limit.
        if (sb.Length > Interpreter.ActiveMaxOutput)
            throw new TemplateRuntimeException($"printed value exceeds the size limit of {Interpreter.ActiveMaxOutput} characters");
        switch (v)
        {
            case null: sb.Append("None"); break;
            case Undefined: sb.Append("Undefined"); break; // repr(); str() of Undefined is empty
            case bool b: sb.Append(b ? "True" : "False"); break;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(FloatRepr(d)); break;
            case string or TaggedText: sb.Append(StringRepr(Text(v))); break;
            case List<object?> list:
                sb.Append('[');
                for (int i = 0; i < list.Count; i++) { if (i > 0) sb.Append(", "); AppendRepr(sb, list[i], depth + 1); }
                sb.Append(']');
                break;
            case JTuple t:
                sb.Append('(');
                for (int i = 0; i < t.Items.Count; i++) { if (i > 0) sb.Append(", "); AppendRepr(sb, t.Items[i], depth + 1); }
                if (t.Items.Count == 1) sb.Append(',');
                sb.Append(')');
                break;
            case Dictionary<object, object?> d:
                sb.Append('{');
                bool first = true;
                foreach (var (k, val) in d)
                {
                    if (!first) sb.Append(", ");
                    first = false;
                    AppendRepr(sb, FromKey(k), depth + 1);
                    sb.Append(": ");
                    AppendRepr(sb, val, depth + 1);
                }
                sb.Append('}');
                break;
            case Namespace: sb.Append("<Namespace>"); break;
            case LoopInfo: sb.Append("<LoopContext>"); break;
            default: sb.Append('<').Append(v.GetType().Name).Append('>'); break;
        }
    }

    /// <summary>
    /// Python's repr of a str: single quotes unless the text has ' and no "; characters that are not printable
    /// (controls, format characters such as ZWJ, separators other than space, unassigned) as \xNN, \uNNNN, \UNNNNNNNN.
    /// </summary>
    public static string StringRepr(string s)
    {
        char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder().Append(q);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == q || c == '\\') { sb.Append('\\').Append(c); continue; }
            if (c == '\n') { sb.Append("\\n"); continue; }
            if (c == '\r') { sb.Append("\\r"); continue; }
            if (c == '\t') { sb.Append("\\t"); continue; }
            int cp = c;
            int width = 1;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { cp = char.ConvertToUtf32(c, s[i + 1]); width = 2; }
            if (IsPrintable(cp)) sb.Append(s, i, width);
            else if (cp < 0x100) sb.Append("\\x").Append(cp.ToString("x2"));
            else if (cp < 0x10000) sb.Append("\\u").Append(cp.ToString("x4"));
            else sb.Append("\\U").Append(cp.ToString("x8"));
            i += width - 1;
        }
        return sb.Append(q).ToString();
    }

    /// <summary>Python's str.isprintable for one code point (space is printable, other separators are not).</summary>
    private static bool IsPrintable(int cp)
    {
        if (cp == ' ') return true;
        var cat = cp is >= 0xD800 and <= 0xDFFF ? UnicodeCategory.Surrogate : CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is not (UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.SpaceSeparator or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator);
    }

    /// <summary>Python's repr of a float: shortest round-trip digits, exponent form below 1e-4 or from 1e16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        if (d == 0) return double.IsNegative(d) ? "-0.0" : "0.0";
        // "E16" gives the shortest round-trip digits as d.ddddE+xx; rebuild Python's layout from digits + exponent.
        var r = d.ToString("R", CultureInfo.InvariantCulture);
        bool neg = r.StartsWith('-');
        if (neg) r = r[1..];
        string mantissa = r; int exp = 0;
        int e = r.IndexOfAny(['E', 'e']);
        if (e >= 0) { mantissa = r[..e]; exp = int.Parse(r[(e + 1)..], CultureInfo.InvariantCulture); }
        int dot = mantissa.IndexOf('.');
        string digits = dot >= 0 ? mantissa.Remove(dot, 1) : mantissa;
        int pointPos = (dot >= 0 ? dot : mantissa.Length) + exp; // decimal point position within digits
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') { lead++; pointPos--; }
        digits = digits[lead..].TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        int sciExp = pointPos - 1;
        string body;
        if (sciExp < -4 || sciExp >= 16)
        {
            body = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
            body += "e" + (sciExp < 0 ? "-" : "+") + Math.Abs(sciExp).ToString("00", CultureInfo.InvariantCulture);
        }
        else if (pointPos <= 0) body = "0." + new string('0', -pointPos) + digits;
        else if (pointPos >= digits.Length) body = digits + new string('0', pointPos - digits.Length) + ".0";
        else body = digits[..pointPos] + "." + digits[pointPos..];
        return neg ? "-" + body : body;
    }

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string or TaggedText => "str",
        List<object?> => "list",
        JTuple => "tuple",
        Dictionary<object, object?> => "dict",
        Namespace => "Namespace",
        LoopInfo => "LoopContext",
        ICallableValue => "function",
        _ => v.GetType().Name,
    };

    /// <summary>Python ==, deep for containers; int and float compare by value; bool is an int.</summary>
    public static bool Eq(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (a is null || b is null) return a is null && b is null;
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a) == ToDouble(b);
            return ToLong(a) == ToLong(b);
        }
        if (IsString(a) && IsString(b)) return Text(a) == Text(b);
        if (a is List<object?> la && b is List<object?> lb) return SeqEq(la, lb);
        if (a is JTuple ta && b is JTuple tb) return SeqEq(ta.Items, tb.Items);
        if (a is Dictionary<object, object?> da && b is Dictionary<object, object?> db)
        {
            if (da.Count != db.Count) return false;
            foreach (var (k, v) in da)
                if (!db.TryGetValue(k, out var w) || !Eq(v, w)) return false;
            return true;
        }
        return ReferenceEquals(a, b);
    }

    private static bool SeqEq(IReadOnlyList<object?> a, IReadOnlyList<object?> b)
    {
        if (a.Count != b.Count) return false;
        for (int i = 0; i < a.Count; i++) if (!Eq(a[i], b[i])) return false;
        return true;
    }

    public static bool IsNumber(object? v) => v is long or double or bool;
    public static double ToDouble(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => throw new TemplateRuntimeException($"expected a number, got {TypeName(v)}") };
    public static long ToLong(object? v) => v switch { long l => l, bool b => b ? 1 : 0, double d => (long)d, _ => throw new TemplateRuntimeException($"expected an integer, got {TypeName(v)}") };

    /// <summary>Python ordering (&lt;): numbers, strings (by code point), sequences lexicographically.</summary>
    public static int Compare(object? a, object? b, string op)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is double || b is double) return ToDouble(a).CompareTo(ToDouble(b));
            return ToLong(a).CompareTo(ToLong(b));
        }
        if (IsString(a) && IsString(b)) return string.CompareOrdinal(Text(a), Text(b)) switch { < 0 => -1, > 0 => 1, _ => 0 };
        if ((a is List<object?> || a is JTuple) && a?.GetType() == b?.GetType())
        {
            var la = AsSeq(a)!; var lb = AsSeq(b)!;
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                if (Eq(la[i], lb[i])) continue;
                return Compare(la[i], lb[i], op);
            }
            return la.Count.CompareTo(lb.Count);
        }
        throw new TemplateRuntimeException($"'{op}' not supported between instances of '{TypeName(a)}' and '{TypeName(b)}'");
    }

    public static IReadOnlyList<object?>? AsSeq(object? v) => v switch
    {
        List<object?> l => l,
        JTuple t => t.Items,
        _ => null,
    };

    /// <summary>Python hashable key for dict lookups: strings by text, ints and bools as long.</summary>
    public static object Key(object? v) => v switch
    {
        TaggedText t => t.Text,
        bool b => b ? 1L : 0L,
        double d when d == Math.Floor(d) && Math.Abs(d) < 9e18 => (long)d,
        null => NoneKey,
        List<object?> or Dictionary<object, object?> => throw new TemplateRuntimeException($"unhashable type: '{TypeName(v)}'"),
        _ => v,
    };
    public static readonly object NoneKey = new NoneKeyMarker();
    private sealed class NoneKeyMarker { public override string ToString() => "None"; }
    public static object? FromKey(object k) => ReferenceEquals(k, NoneKey) ? null : k;
}
