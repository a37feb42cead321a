using System.Text;

namespace InstructTune.Templates.Jinja;

/// <summary>
/// Python's str.upper()/lower(): full Unicode case mapping, which differs from .NET's simple invariant mapping for
/// a few characters (ß → SS, ligatures ﬁ → FI, İ → i̇) and lower-cases a word-final Σ to ς.
/// </summary>
public static class PyCase
{
    private static readonly Dictionary<char, string> UpperSpecial = new()
    {
        ['ß'] = "SS", ['ŉ'] = "\u02BCN", ['ǰ'] = "J\u030C", ['ﬀ'] = "FF", ['ﬁ'] = "FI", ['ﬂ'] = "FL", ['ﬃ'] = "FFI",
        ['ﬄ'] = "FFL", ['ﬅ'] = "ST", ['ﬆ'] = "ST", ['և'] = "ԵՒ", ['ﬓ'] = "ՄՆ", ['ﬔ'] = "ՄԵ", ['ﬕ'] = "ՄԻ", ['ﬖ'] = "ՎՆ", ['ﬗ'] = "ՄԽ",
    };

    public static string Upper(string s)
    {
        StringBuilder? sb = null;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (UpperSpecial.TryGetValue(c, out var rep))
            {
                sb ??= new StringBuilder(s.Length + 8).Append(s.AsSpan(0, i).ToString().ToUpperInvariant());
                sb.Append(rep);
            }
            else sb?.Append(char.ToUpperInvariant(c));
        }
        return sb?.ToString() ?? s.ToUpperInvariant();
    }

    /// <summary>Python's capitalize(): the first character title-cased (ß → Ss), the rest lower-cased.</summary>
    public static string Capitalize(string s)
    {
        if (s.Length == 0) return s;
        string first = UpperSpecial.TryGetValue(s[0], out var rep) ? rep[..1] + rep[1..].ToLowerInvariant() : char.ToUpperInvariant(s[0]).ToString();
        return first + Lower(s[1..]);
    }

    public static string Lower(string s)
    {
        if (s.IndexOf('İ') < 0 && s.IndexOf('Σ') < 0) return s.ToLowerInvariant();
        var sb = new StringBuilder(s.Length + 4);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == 'İ') sb.Append("i\u0307");
            else if (c == 'Σ')
            {
                // Final_Sigma: preceded by a cased letter and not followed by one.
                bool before = i > 0 && char.IsLetter(s[i - 1]);
                bool after = i + 1 < s.Length && char.IsLetter(s[i + 1]);
                sb.Append(before && !after ? 'ς' : 'σ');
            }
            else sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }
}
