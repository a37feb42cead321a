using System.Globalization;
using System.Text;

namespace InstructTune.Templates.Jinja;

/// <summary>
/// Global functions a chat template can call: jinja2's range, namespace, dict, cycler/joiner-free subset,
/// and the two transformers adds, raise_exception(msg) and strftime_now(fmt).
/// </summary>
public static class JinjaGlobals
{
    /// <summary>Thrown by raise_exception: carries the template's own message unchanged.</summary>
    public sealed class RaisedException(string message) : InstructTune.Common.InputException(message);

    public static Dictionary<string, object?> Create() => new(StringComparer.Ordinal)
    {
        ["range"] = new BuiltinFunction("range", (interp, a, _) =>
        {
            if (a.Count == 0 || a.Count > 3) throw new TemplateRuntimeException("range expected 1 to 3 arguments");
            long start = a.Count == 1 ? 0 : Py.ToLong(a[0]), stop = Py.ToLong(a.Count == 1 ? a[0] : a[1]), step = a.Count == 3 ? Py.ToLong(a[2]) : 1;
            if (step == 0) throw new TemplateRuntimeException("range() arg 3 must not be zero");
            var r = new RangeValue(start, stop, step);
            if (r.Count > interp.Limits.MaxLoopIterations)
                throw new TemplateRuntimeException($"range of {r.Count} items exceeds the loop iteration limit of {interp.Limits.MaxLoopIterations}");
            return r.ToList();
        }),
        ["namespace"] = new BuiltinFunction("namespace", (_, a, k) =>
        {
            var ns = new Namespace();
            foreach (var arg in a)
                if (arg is Dictionary<object, object?> d) foreach (var (key, v) in d) ns.Attributes[Py.Text(key)] = v;
            foreach (var (key, v) in k) ns.Attributes[key] = v;
            return ns;
        }),
        ["dict"] = new BuiltinFunction("dict", (_, a, k) =>
        {
            var d = a.Count > 0 && a[0] is Dictionary<object, object?> src ? new Dictionary<object, object?>(src) : new Dictionary<object, object?>();
            foreach (var (key, v) in k) d[key] = v;
            return d;
        }),
        ["raise_exception"] = new BuiltinFunction("raise_exception", (_, a, _) =>
            throw new RaisedException(a.Count > 0 ? Py.Str(a[0]) : "")),
        ["strftime_now"] = new BuiltinFunction("strftime_now", (interp, a, _) =>
            Strftime(interp.Clock(), a.Count > 0 ? Py.Text(a[0]) : "")),
    };

    /// <summary>Python's datetime.strftime for the C-locale directives templates use (%d %b %Y %H:%M …).</summary>
    public static string Strftime(DateTime t, string fmt)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < fmt.Length; i++)
        {
            if (fmt[i] != '%' || i + 1 >= fmt.Length) { sb.Append(fmt[i]); continue; }
            char c = fmt[++i];
            sb.Append(c switch
            {
                'd' => t.Day.ToString("00", inv),
                'm' => t.Month.ToString("00", inv),
                'Y' => t.Year.ToString("0000", inv),
                'y' => (t.Year % 100).ToString("00", inv),
                'H' => t.Hour.ToString("00", inv),
                'I' => ((t.Hour + 11) % 12 + 1).ToString("00", inv),
                'M' => t.Minute.ToString("00", inv),
                'S' => t.Second.ToString("00", inv),
                'f' => (t.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", inv),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'b' => inv.DateTimeFormat.GetAbbreviatedMonthName(t.Month),
                'B' => inv.DateTimeFormat.GetMonthName(t.Month),
                'a' => inv.DateTimeFormat.GetAbbreviatedDayName(t.DayOfWeek),
                'A' => inv.DateTimeFormat.GetDayName(t.DayOfWeek),
                'j' => t.DayOfYear.ToString("000", inv),
                'w' => ((int)t.DayOfWeek).ToString(inv),
                'e' => t.Day.ToString(inv).PadLeft(2),
                '%' => "%",
                _ => "%" + c,
            });
        }
        return sb.ToString();
    }
}
