namespace InstructTune.Templates.Jinja;

/// <summary>
/// Python strings are indexed by code point, .NET strings by UTF-16 unit: len('😀') is 1 in Python. These helpers
/// translate code-point positions to UTF-16 offsets; strings without surrogates take the identity fast path.
/// </summary>
public static class CodePoints
{
    /// <summary>UTF-16 offset of every code point, plus the string length at the end; null when there are no surrogates.</summary>
    public static int[]? Offsets(string s)
    {
        if (s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0) return null;
        var offsets = new List<int>(s.Length + 1);
        for (int i = 0; i < s.Length; i++)
        {
            offsets.Add(i);
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
        }
        offsets.Add(s.Length);
        return [.. offsets];
    }

    public static int Length(string s) => Offsets(s) is { } o ? o.Length - 1 : s.Length;

    /// <summary>Code points [start, start+count) of a string value as a slice (keeps provenance).</summary>
    public static object Slice(object value, int[]? offsets, int start, int count) =>
        offsets is null
            ? TaggedText.Slice(value, start, count)
            : TaggedText.Slice(value, offsets[start], offsets[start + count] - offsets[start]);

    /// <summary>The code-point index of a UTF-16 offset (for find/index results); -1 stays -1.</summary>
    public static int IndexOf(string s, int utf16Index)
    {
        if (utf16Index < 0) return -1;
        var o = Offsets(s);
        return o is null ? utf16Index : Array.BinarySearch(o, utf16Index) is var i && i >= 0 ? i : ~i;
    }
}
