using System.Globalization;
using System.Text;

namespace InstructTune.Templates.Jinja;

/// <summary>Python arithmetic, concatenation and comparison on template values.</summary>
public static class Operators
{
    public static object? Binary(string op, object? a, object? b, RenderLimits limits)
    {
        if (op == "~")
        {
            // jinja2 `~` converts both sides with str(); Undefined prints as empty.
            var r = TaggedText.Concat([Py.StrValue(a), Py.StrValue(b)]);
            CheckSize(Py.Text(r).Length, limits);
            return r;
        }
        // CPython treats an argument with __getitem__ (jinja2's Undefined has one) as a mapping for str % args.
        if (op == "%" && Py.IsString(a) && b is Undefined) return PercentFormat(Py.Text(a), b);
        if (a is Undefined ua) throw new TemplateRuntimeException(ua.Hint);
        if (b is Undefined ub) throw new TemplateRuntimeException(ub.Hint);
        switch (op)
        {
            case "+":
                if (Py.IsString(a) && Py.IsString(b))
                {
                    CheckSize(Py.Text(a).Length + (long)Py.Text(b).Length, limits);
                    return TaggedText.Concat([a!, b!]);
                }
                if (a is List<object?> la && b is List<object?> lb)
                {
                    CheckSize(la.Count + (long)lb.Count, limits);
                    return la.Concat(lb).ToList();
                }
                if (a is JTuple ta && b is JTuple tb) return new JTuple([.. ta.Items, .. tb.Items]);
                return Arith(op, a, b);
            case "*":
                if (Py.IsString(a) && b is long or bool) return Repeat(a!, Py.ToLong(b), limits);
                if (Py.IsString(b) && a is long or bool) return Repeat(b!, Py.ToLong(a), limits);
                if (b is List<object?> && a is long or bool) (a, b) = (b, a);
                if (a is List<object?> l && b is long or bool)
                {
                    long n = Py.ToLong(b);
                    CheckSize(l.Count * Math.Max(0, n), limits);
                    var r = new List<object?>();
                    for (long i = 0; i < n; i++) r.AddRange(l);
                    return r;
                }
                return Arith(op, a, b);
            case "%":
                if (Py.IsString(a)) return PercentFormat(Py.Text(a), b);
                return Arith(op, a, b);
            default:
                return Arith(op, a, b);
        }
    }

    private static void CheckSize(long n, RenderLimits limits)
    {
        if (n > limits.MaxOutputLength)
            throw new TemplateRuntimeException($"value of {n} items exceeds the size limit of {limits.MaxOutputLength}");
    }

    private static object Repeat(object s, long n, RenderLimits limits)
    {
        CheckSize(Py.Text(s).Length * Math.Max(0, n), limits);
        return TaggedText.Concat(Enumerable.Repeat(s, (int)Math.Max(0, n)));
    }

    private static object Arith(string op, object? a, object? b)
    {
        if (!Py.IsNumber(a) || !Py.IsNumber(b))
            throw new TemplateRuntimeException($"unsupported operand type(s) for {op}: '{Py.TypeName(a)}' and '{Py.TypeName(b)}'");
        if (op == "/")
        {
            double d = Py.ToDouble(b);
            if (d == 0) throw new TemplateRuntimeException("division by zero");
            return Py.ToDouble(a) / d;
        }
        if (a is double || b is double)
        {
            double x = Py.ToDouble(a), y = Py.ToDouble(b);
            return op switch
            {
                "+" => x + y,
                "-" => x - y,
                "*" => x * y,
                "//" => y == 0 ? throw new TemplateRuntimeException("float floor division by zero") : Math.Floor(x / y),
                "%" => y == 0 ? throw new TemplateRuntimeException("float modulo") : x - y * Math.Floor(x / y),
                "**" => Math.Pow(x, y),
                _ => throw new TemplateRuntimeException($"unknown operator {op}"),
            };
        }
        long p = Py.ToLong(a), q = Py.ToLong(b);
        try
        {
            return op switch
            {
                "+" => checked(p + q),
                "-" => checked(p - q),
                "*" => checked(p * q),
                "//" => q == 0 ? throw new TemplateRuntimeException("integer division or modulo by zero") : FloorDiv(p, q),
                "%" => q == 0 ? throw new TemplateRuntimeException("integer division or modulo by zero") : checked(p - q * FloorDiv(p, q)),
                "**" => q >= 0 ? IntPow(p, q) : Math.Pow(p, q),
                _ => throw new TemplateRuntimeException($"unknown operator {op}"),
            };
        }
        catch (OverflowException)
        {
            // Python would give the exact big integer; a silently wrapped or saturated value would be a wrong answer.
            throw new TemplateRuntimeException($"integer overflow: {p} {op} {q} does not fit in 64 bits");
        }
    }

    /// <summary>Exact p ** q for q ≥ 0 by squaring, with overflow checked at every multiplication.</summary>
    private static object IntPow(long p, long q)
    {
        long result = 1, b = p;
        while (q > 0)
        {
            if ((q & 1) != 0) result = checked(result * b);
            q >>= 1;
            if (q > 0) b = checked(b * b);
        }
        return result;
    }

    private static long FloorDiv(long p, long q)
    {
        long d = checked(p / q);
        if ((p % q != 0) && ((p < 0) != (q < 0))) d--;
        return d;
    }

    /// <summary>printf-style "%s %d %r %f %%" formatting of strings.</summary>
    private static string PercentFormat(string fmt, object? args)
    {
        var values = args is JTuple t ? t.Items : [args];
        var sb = new StringBuilder();
        int k = 0;
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%') { sb.Append(fmt[i]); continue; }
            if (++i >= fmt.Length) throw new TemplateRuntimeException("incomplete format");
            int precision = -1;
            if (fmt[i] == '.')
            {
                int st = ++i;
                while (i < fmt.Length && char.IsAsciiDigit(fmt[i])) i++;
                precision = int.Parse(fmt.AsSpan(st, i - st), CultureInfo.InvariantCulture);
            }
            char c = fmt[i];
            if (c == '%') { sb.Append('%'); continue; }
            if (k >= values.Count) throw new TemplateRuntimeException("not enough arguments for format string");
            var v = values[k++];
            sb.Append(c switch
            {
                's' => Py.Str(v),
                'r' => Py.Repr(v),
                'd' or 'i' => Py.ToLong(v).ToString(CultureInfo.InvariantCulture),
                'f' => Py.ToDouble(v).ToString("F" + (precision < 0 ? 6 : precision), CultureInfo.InvariantCulture),
                _ => throw new TemplateRuntimeException($"unsupported format character '{c}'"),
            });
        }
        // CPython treats any non-tuple, non-str argument with __getitem__ (dict, list) as a mapping: no leftover check.
        if (k < values.Count && args is not (Dictionary<object, object?> or List<object?> or Undefined)) throw new TemplateRuntimeException("not all arguments converted during string formatting");
        return sb.ToString();
    }

    public static bool Compare(string op, object? a, object? b) => op switch
    {
        "==" => Py.Eq(a, b),
        "!=" => !Py.Eq(a, b),
        "<" => Py.Compare(a, b, op) < 0,
        "<=" => Py.Compare(a, b, op) <= 0,
        ">" => Py.Compare(a, b, op) > 0,
        ">=" => Py.Compare(a, b, op) >= 0,
        "in" => Contains(b, a),
        "notin" => !Contains(b, a),
        _ => throw new TemplateRuntimeException($"unknown comparison {op}"),
    };

    /// <summary>Python `item in container`.</summary>
    public static bool Contains(object? container, object? item) => container switch
    {
        Undefined => false,
        string or TaggedText => Py.IsString(item)
            ? Py.Text(container).Contains(Py.Text(item), StringComparison.Ordinal)
            : throw new TemplateRuntimeException($"'in <string>' requires string as left operand, not {Py.TypeName(item)}"),
        List<object?> l => l.Any(x => Py.Eq(x, item)),
        JTuple t => t.Items.Any(x => Py.Eq(x, item)),
        Dictionary<object, object?> d => d.ContainsKey(Py.Key(item)),
        _ => throw new TemplateRuntimeException($"argument of type '{Py.TypeName(container)}' is not iterable"),
    };
}
