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

    /// <summary>Python's <c>s.lower()</c> for the cases that matter here: .NET's invariant simple mapping plus the one
    /// full mapping that changes length in a way our tokenizers can see (U+0130 → "i" + U+0307).</summary>
    public static string Lower(string s)
    {
        if (s.IndexOf('\u0130') < 0) return s.ToLowerInvariant();
        return s.Replace("\u0130", "i\u0307").ToLowerInvariant();
    }
}
