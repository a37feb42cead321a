namespace InstructTune.Evaluation.Metrics;

/// <summary>
/// The few pieces of Python string semantics that the reference metric tools (sacreBLEU, rouge_score, the SQuAD
/// script) rely on, so our ports split and lowercase text exactly as they do rather than as .NET would.
/// </summary>
public static class PythonText
{
    /// <summary>Python's <c>str.isspace</c> set: what <c>str.split()</c> and <c>str.strip()</c> treat as whitespace.
    /// It differs from <see cref="char.IsWhiteSpace(char)"/> by including U+001C..U+001F.</summary>
    public static bool IsSpace(char c) => c switch
    {
        '\t' or '\n' or '\v' or '\f' or '\r' or ' ' => true,
        '\x1c' or '\x1d' or '\x1e' or '\x1f' or '\x85' or '\xa0' => true,
        '\u1680' or '\u2028' or '\u2029' or '\u202f' or '\u205f' or '\u3000' => true,
        >= '\u2000' and <= '\u200a' => true,
        _ => false,
    };

    /// <summary>Python's <c>s.split()</c> with no argument: runs of whitespace separate, no empty pieces.</summary>
    public static List<string> Split(string s)
    {
        var parts = new List<string>();
        int i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && IsSpace(s[i])) i++;
            int start = i;
            while (i < s.Length && !IsSpace(s[i])) i++;
            if (i > start) parts.Add(s[start..i]);
        }
        return parts;
    }

    /// <summary>Python's <c>s.rstrip()</c>.</summary>
    public static string RStrip(string s)
    {
        int end = s.Length;
        while (end > 0 && IsSpace(s[end - 1])) end--;
        return s[..end];
    }

    /// <summary>Python's <c>s.lower()</c> for the cases that matter here: .NET's invariant simple mapping plus the
    /// two special cases of Unicode's full mapping that Python applies: U+0130 → "i" + U+0307, and capital sigma
    /// → final ς at the end of a word (Final_Sigma: a cased letter before, none after).</summary>
    public static string Lower(string s)
    {
        if (s.IndexOf('\u0130') >= 0) s = s.Replace("\u0130", "i\u0307");
        if (s.IndexOf('\u03a3') < 0) return s.ToLowerInvariant();
        var chars = s.ToLowerInvariant().ToCharArray();
        for (int i = 0; i < s.Length; i++)
            if (s[i] == '\u03a3' && CasedBefore(s, i) && !CasedAfter(s, i)) chars[i] = '\u03c2';
        return new string(chars);
    }

    // Final_Sigma context: skip case-ignorable characters (marks, apostrophes) when looking for a cased letter.
    private static bool CasedBefore(string s, int i)
    {
        for (int j = i - 1; j >= 0; j--)
        {
            if (IsCaseIgnorable(s[j])) continue;
            return char.IsUpper(s[j]) || char.IsLower(s[j]);
        }
        return false;
    }

    private static bool CasedAfter(string s, int i)
    {
        for (int j = i + 1; j < s.Length; j++)
        {
            if (IsCaseIgnorable(s[j])) continue;
            return char.IsUpper(s[j]) || char.IsLower(s[j]);
        }
        return false;
    }

    private static bool IsCaseIgnorable(char c) =>
        c is '\'' or '.' or ':' or '\u00b7' or '\u2019' ||
        char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.NonSpacingMark
            or System.Globalization.UnicodeCategory.EnclosingMark or System.Globalization.UnicodeCategory.Format
            or System.Globalization.UnicodeCategory.ModifierLetter or System.Globalization.UnicodeCategory.ModifierSymbol;
}
