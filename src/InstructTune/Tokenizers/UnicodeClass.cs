using System.Globalization;
using System.Text;

namespace InstructTune.Tokenizers;

/// <summary>
/// Character classes as Oniguruma / Rust see them, by code point: \p{L}, \p{N}, \s (Unicode White_Space) and the
/// Rust char predicates used by HF components. .NET's Regex works on UTF-16 units, so a supplementary letter
/// (e.g. U+1D400) is not \p{L} there; these helpers classify whole code points instead.
/// </summary>
internal static class UnicodeClass
{
    public const byte Other = 0, Letter = 1, Number = 2, Space = 3;

    private static readonly byte[] Ascii = BuildAscii();

    private static byte[] BuildAscii()
    {
        var t = new byte[128];
        for (int c = 0; c < 128; c++) t[c] = ClassifySlow(c);
        return t;
    }

    /// <summary>Class of the code point at s[i]; n = its length in UTF-16 units (2 for a valid pair).</summary>
    public static byte Classify(ReadOnlySpan<char> s, int i, out int n)
    {
        char c = s[i];
        if (c < 128) { n = 1; return Ascii[c]; }
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            n = 2;
            return ClassifySlow(char.ConvertToUtf32(c, s[i + 1]));
        }
        n = 1;
        return ClassifySlow(c);
    }

    public static byte ClassifySlow(int cp)
    {
        if (IsWhiteSpace(cp)) return Space;
        if (cp is >= 0xD800 and <= 0xDFFF) return Other;
        switch (Rune.GetUnicodeCategory(new Rune(cp)))
        {
            case UnicodeCategory.UppercaseLetter: case UnicodeCategory.LowercaseLetter:
            case UnicodeCategory.TitlecaseLetter: case UnicodeCategory.ModifierLetter:
            case UnicodeCategory.OtherLetter:
                return Letter;
            case UnicodeCategory.DecimalDigitNumber: case UnicodeCategory.LetterNumber:
            case UnicodeCategory.OtherNumber:
                return Number;
            default:
                return Other;
        }
    }

    /// <summary>Unicode White_Space (what \s means in Oniguruma and what Rust's char::is_whitespace tests).</summary>
    public static bool IsWhiteSpace(int cp) => cp switch
    {
        >= 0x09 and <= 0x0D => true,
        0x20 or 0x85 or 0xA0 or 0x1680 or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        >= 0x2000 and <= 0x200A => true,
        _ => false,
    };

    public static int CodePointAt(ReadOnlySpan<char> s, int i, out int n)
    {
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            n = 2; return char.ConvertToUtf32(c, s[i + 1]);
        }
        n = 1; return c;
    }

    /// <summary>Rust char::is_alphanumeric: Alphabetic or Numeric (approximated by L/Nl/Mn-free categories).</summary>
    public static bool IsAlphanumeric(int cp)
    {
        var k = ClassifySlow(cp);
        return k == Letter || k == Number;
    }

    /// <summary>Onig \w (UTS #18): letters and letter numbers, marks, decimal digits, connector punctuation, and the
    /// join controls ZWNJ/ZWJ (so "👩\u200D💻" is three pieces for the Whitespace pre-tokenizer, as in HF).</summary>
    public static bool IsWordChar(int cp)
    {
        if (cp is >= 0xD800 and <= 0xDFFF) return false;
        if (cp is 0x200C or 0x200D) return true;
        var cat = Rune.GetUnicodeCategory(new Rune(cp));
        return cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
            or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
            or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation or UnicodeCategory.LetterNumber;
    }

    /// <summary>Rust char::is_ascii_punctuation || Unicode punctuation (HF Punctuation / Bert pre-tokenizers).</summary>
    public static bool IsPunctuation(int cp)
    {
        if (cp < 128) return cp is (>= 33 and <= 47) or (>= 58 and <= 64) or (>= 91 and <= 96) or (>= 123 and <= 126);
        if (cp is >= 0xD800 and <= 0xDFFF) return false;
        var cat = Rune.GetUnicodeCategory(new Rune(cp));
        return cat is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
            or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>Replaces lone surrogates with U+FFFD, as the reference does when a JS/.NET string reaches Rust.</summary>
    public static string ReplaceLoneSurrogates(string s)
    {
        int i = s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (i < 0) return s;
        for (; i < s.Length; i++)
        {
            char c = s[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            break;
        }
        if (i >= s.Length) return s;
        var chars = s.ToCharArray();
        for (; i < chars.Length; i++)
        {
            char c = chars[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) { i++; continue; }
            chars[i] = '\uFFFD';
        }
        return new string(chars);
    }
}
