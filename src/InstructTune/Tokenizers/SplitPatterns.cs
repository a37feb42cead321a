using System.Text.RegularExpressions;

namespace InstructTune.Tokenizers;

/// <summary>Finds the matches of a split pattern in a span: appends (start, end) pairs relative to the span,
/// non-overlapping, left to right, never empty.</summary>
public delegate void MatchFinder(ReadOnlySpan<char> s, List<(int Start, int End)> matches);

/// <summary>
/// The pre-tokenizer regexes of GPT-2, Llama 3 and Qwen2 written out as code over code points, and a .NET Regex
/// fallback for any other pattern. Why hand-written: HF runs these patterns in Oniguruma over Unicode scalar values;
/// .NET Regex runs over UTF-16 units, so `[^\r\n\p{L}\p{N}]?\p{L}+` would split an emoji's surrogate pair from a
/// following word and \p{L} would miss supplementary letters. The code below follows the backtracking order of each
/// alternative exactly (leftmost alternative wins, greedy runs, `\s+(?!\S)` gives back one space) and is 5-10x
/// faster than a regex engine.
/// </summary>
public static class SplitPatterns
{
    public const string Gpt2 = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    public const string Llama3 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    public const string Qwen2 = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The matcher for a tokenizer.json Split/ByteLevel regex: hand-written for the known patterns,
    /// otherwise .NET Regex (exact for BMP text; see the class comment for supplementary characters).</summary>
    public static MatchFinder ForRegex(string pattern)
    {
        if (pattern == Gpt2) return FindGpt2;
        if (pattern == Llama3) return (s, m) => FindLlama3(s, m, 3);
        if (pattern == Qwen2) return (s, m) => FindLlama3(s, m, 1);
        Regex re;
        try { re = new Regex(pattern, RegexOptions.CultureInvariant); }
        catch (ArgumentException e) { throw new TokenizerFormatException($"unsupported regex `{pattern}`: {e.Message}", e); }
        return (s, matches) =>
        {
            foreach (var m in re.EnumerateMatches(s))
                if (m.Length > 0) matches.Add((m.Index, m.Index + m.Length));
        };
    }

    public static MatchFinder ForLiteral(string literal) => (s, matches) =>
    {
        if (literal.Length == 0) return;
        for (int i = 0; i <= s.Length - literal.Length;)
        {
            int k = s[i..].IndexOf(literal, StringComparison.Ordinal);
            if (k < 0) break;
            matches.Add((i + k, i + k + literal.Length));
            i += k + literal.Length;
        }
    };

    /// <summary>Each code point satisfying pred is its own match (how HF splits on a char predicate).</summary>
    public static MatchFinder ForPredicate(Func<int, bool> pred) => (s, matches) =>
    {
        for (int i = 0; i < s.Length;)
        {
            int cp = UnicodeClass.CodePointAt(s, i, out int n);
            if (pred(cp)) matches.Add((i, i + n));
            i += n;
        }
    };

    private static int Run(ReadOnlySpan<char> s, int i, byte cls, int maxCount = int.MaxValue)
    {
        int count = 0;
        while (i < s.Length && count < maxCount)
        {
            if (UnicodeClass.Classify(s, i, out int n) != cls) break;
            i += n; count++;
        }
        return i;
    }

    /// <summary>`\s+(?!\S)|\s+` at i (s[i] is white space): the run, minus its last code point when more text
    /// follows and the run is longer than one.</summary>
    private static int SpaceRun(ReadOnlySpan<char> s, int i)
    {
        int j = i, last = i, count = 0;
        while (j < s.Length)
        {
            if (UnicodeClass.Classify(s, j, out int n) != UnicodeClass.Space) break;
            last = j; j += n; count++;
        }
        if (j == s.Length || count < 2) return j;
        return last;
    }

    private static int Contraction(ReadOnlySpan<char> s, int i, bool ignoreCase)
    {
        if (s[i] != '\'' || i + 1 >= s.Length) return 0;
        char a = s[i + 1], b = i + 2 < s.Length ? s[i + 2] : '\0';
        if (ignoreCase)
        {
            if (a == '\u017F') return 2; // ſ folds to s
            a = ToLowerAscii(a); b = ToLowerAscii(b);
        }
        switch (a)
        {
            case 's': case 't': case 'm': case 'd': return 2;
            case 'r': case 'v': return b == 'e' ? 3 : 0;
            case 'l': return b == 'l' ? 3 : 0;
            default: return 0;
        }
    }

    private static char ToLowerAscii(char c) => c is >= 'A' and <= 'Z' ? (char)(c + 32) : c;

    /// <summary>GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</summary>
    public static void FindGpt2(ReadOnlySpan<char> s, List<(int Start, int End)> matches)
    {
        int i = 0;
        while (i < s.Length)
        {
            int end;
            int k = Contraction(s, i, ignoreCase: false);
            if (k > 0) end = i + k;
            else
            {
                byte c = UnicodeClass.Classify(s, i, out int n);
                if (s[i] == ' ' && i + 1 < s.Length && UnicodeClass.Classify(s, i + 1, out _) is var next && next != UnicodeClass.Space)
                    end = Run(s, i + 1, next);                       // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+"
                else if (c != UnicodeClass.Space) end = Run(s, i + n, c);
                else end = SpaceRun(s, i);
            }
            matches.Add((i, end));
            i = end;
        }
    }

    /// <summary>Llama 3 (maxDigits 3) and Qwen2 (maxDigits 1):
    /// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</summary>
    public static void FindLlama3(ReadOnlySpan<char> s, List<(int Start, int End)> matches, int maxDigits)
    {
        int i = 0;
        while (i < s.Length)
        {
            int end = 0;
            int k = Contraction(s, i, ignoreCase: true);
            byte c = UnicodeClass.Classify(s, i, out int n);
            if (k > 0) end = i + k;
            else if (c == UnicodeClass.Letter) end = Run(s, i + n, UnicodeClass.Letter);
            else if (c != UnicodeClass.Number && s[i] != '\r' && s[i] != '\n' && i + n < s.Length
                     && UnicodeClass.Classify(s, i + n, out _) == UnicodeClass.Letter)
                end = Run(s, i + n, UnicodeClass.Letter);               // one leading non-letter, then letters
            else if (c == UnicodeClass.Number) end = Run(s, i, UnicodeClass.Number, maxDigits);
            else if (c == UnicodeClass.Other) end = NewlinesAfter(s, Run(s, i, UnicodeClass.Other));
            else if (s[i] == ' ' && i + 1 < s.Length && UnicodeClass.Classify(s, i + 1, out _) == UnicodeClass.Other)
                end = NewlinesAfter(s, Run(s, i + 1, UnicodeClass.Other));
            else
            {
                // c is white space: `\s*[\r\n]+` ends after the last newline of the run; else `\s+(?!\S)|\s+`.
                int j = i, lastNl = -1;
                while (j < s.Length && UnicodeClass.Classify(s, j, out int m) == UnicodeClass.Space)
                {
                    if (s[j] == '\r' || s[j] == '\n') lastNl = j;
                    j += m;
                }
                end = lastNl >= 0 ? lastNl + 1 : SpaceRun(s, i);
            }
            matches.Add((i, end));
            i = end;
        }
    }

    private static int NewlinesAfter(ReadOnlySpan<char> s, int i)
    {
        while (i < s.Length && (s[i] == '\r' || s[i] == '\n')) i++;
        return i;
    }
}
