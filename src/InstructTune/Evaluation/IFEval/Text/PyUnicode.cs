using System.Globalization;
using System.Text;

namespace InstructTune.Evaluation.IFEval.Text;

/// <summary>
/// Python 3 <c>str</c> semantics that IFEval's checks depend on, over .NET strings: whitespace
/// (<c>str.isspace</c>, <c>str.strip</c>, <c>str.split()</c>), the Unicode <c>\w</c> class of Python's
/// <c>re</c> module, and <c>str.isupper</c>/<c>str.islower</c> (which need at least one cased character).
/// </summary>
/// <remarks>
/// Why not the .NET equivalents: .NET <c>\w</c> includes combining marks (Mn) and connector punctuation
/// but not letter-like numbers (Nl, No), so Hindi or Bengali words would be counted differently;
/// <c>char.IsWhiteSpace</c> omits the information separators U+001C..U+001F that Python treats as space.
/// Regex fragments below (<see cref="SpaceClass"/>, <see cref="WordClass"/>) give the Python classes to
/// patterns translated from the official code.
/// </remarks>
public static class PyUnicode
{
    /// <summary>Python's <c>\s</c> for str patterns: .NET <c>\s</c> plus U+001C..U+001F.</summary>
    public const string SpaceClass = @"[\s\x1c-\x1f]";

    /// <summary>Python's <c>\S</c>.</summary>
    public const string NonSpaceClass = @"[^\s\x1c-\x1f]";

    /// <summary>Python's <c>\w</c>: alphanumeric per <c>str.isalnum</c> (letters and numbers) or underscore.</summary>
    public const string WordClass = @"[\p{L}\p{N}_]";

    /// <summary>Python's <c>\W</c>.</summary>
    public const string NonWordClass = @"[^\p{L}\p{N}_]";

    /// <summary>Python's <c>\b</c> under the Unicode word class above.</summary>
    public const string WordBoundary = @"(?:(?<=[\p{L}\p{N}_])(?![\p{L}\p{N}_])|(?<![\p{L}\p{N}_])(?=[\p{L}\p{N}_]))";

    /// <summary><c>str.isspace</c> for one code point.</summary>
    public static bool IsSpace(int cp) =>
        cp is >= 0x1C and <= 0x1F || (cp <= 0xFFFF ? char.IsWhiteSpace((char)cp) : false);

    /// <summary><c>str.isspace</c> for one UTF-16 unit (surrogates are never space).</summary>
    public static bool IsSpace(char c) => c is >= '\x1c' and <= '\x1f' || char.IsWhiteSpace(c);

    /// <summary>Python's regex <c>\w</c> for one code point.</summary>
    public static bool IsWord(Rune r) => r.Value == '_' || Rune.IsLetter(r) || Rune.IsNumber(r);

    /// <summary><c>str.strip()</c>.</summary>
    public static string Strip(string s)
    {
        int a = 0, b = s.Length;
        while (a < b && IsSpace(s[a])) a++;
        while (b > a && IsSpace(s[b - 1])) b--;
        return s.Substring(a, b - a);
    }

    /// <summary><c>str.rstrip()</c> (one implementation of Python's string semantics: <see cref="Metrics.PythonText"/>).</summary>
    public static string RStrip(string s) => Metrics.PythonText.RStrip(s);

    /// <summary><c>str.split()</c> without arguments: runs of whitespace separate, no empty parts.</summary>
    public static List<string> SplitWhitespace(string s) => Metrics.PythonText.Split(s);

    /// <summary><c>str.lower()</c> (simple case mapping, invariant culture; differs from Python only for U+0130).</summary>
    public static string Lower(string s) => s.ToLowerInvariant();

    /// <summary>Number of maximal runs of Python <c>\w</c> code points: nltk <c>RegexpTokenizer(r"\w+")</c> token count.</summary>
    public static int CountWordRuns(string s)
    {
        int count = 0;
        bool inWord = false;
        foreach (var r in s.EnumerateRunes())
        {
            bool w = IsWord(r);
            if (w && !inWord) count++;
            inWord = w;
        }
        return count;
    }

    /// <summary>Unicode "Uppercase" property of one code point (Lu plus Other_Uppercase), as Python's <c>isupper</c> uses.</summary>
    public static bool IsUpperCp(Rune r) =>
        Rune.GetUnicodeCategory(r) == UnicodeCategory.UppercaseLetter
        || r.Value is >= 0x2160 and <= 0x216F   // Roman numerals
        || r.Value is >= 0x24B6 and <= 0x24CF   // circled capitals
        || r.Value is >= 0x1F130 and <= 0x1F149 or >= 0x1F150 and <= 0x1F169 or >= 0x1F170 and <= 0x1F189;

    /// <summary>Unicode "Lowercase" property of one code point (Ll plus the common Other_Lowercase ranges).</summary>
    public static bool IsLowerCp(Rune r) =>
        Rune.GetUnicodeCategory(r) == UnicodeCategory.LowercaseLetter
        || r.Value is 0xAA or 0xBA or 0x345 or 0x37A or 0x2071 or 0x207F
        || r.Value is >= 0x2B0 and <= 0x2B8 or >= 0x2C0 and <= 0x2C1 or >= 0x2E0 and <= 0x2E4
        || r.Value is >= 0x1D2C and <= 0x1D6A or 0x1D78 or >= 0x1D9B and <= 0x1DBF or >= 0x2090 and <= 0x209C
        || r.Value is >= 0x2170 and <= 0x217F or >= 0x24D0 and <= 0x24E9;

    private static bool IsTitleCp(Rune r) => Rune.GetUnicodeCategory(r) == UnicodeCategory.TitlecaseLetter;

    /// <summary><c>str.isupper()</c>: no lowercase or titlecase code point and at least one uppercase one.</summary>
    public static bool IsUpper(string s)
    {
        bool cased = false;
        foreach (var r in s.EnumerateRunes())
        {
            if (IsLowerCp(r) || IsTitleCp(r)) return false;
            if (IsUpperCp(r)) cased = true;
        }
        return cased;
    }

    /// <summary><c>str.islower()</c>: no uppercase or titlecase code point and at least one lowercase one.</summary>
    public static bool IsLower(string s)
    {
        bool cased = false;
        foreach (var r in s.EnumerateRunes())
        {
            if (IsUpperCp(r) || IsTitleCp(r)) return false;
            if (IsLowerCp(r)) cased = true;
        }
        return cased;
    }

    /// <summary>The first code point of <paramref name="s"/> (which must be non-empty).</summary>
    public static Rune FirstRune(string s) => Rune.GetRuneAt(s, 0);
}
