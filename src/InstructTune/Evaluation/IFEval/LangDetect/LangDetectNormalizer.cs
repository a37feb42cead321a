using System.Text;
using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.IFEval.LangDetect;

/// <summary>
/// langdetect's character normalisation (<c>NGram.normalize</c>, <c>NGram.normalize_vi</c>): ASCII non-letters
/// and general punctuation become spaces, Romanian comma letters become cedilla letters, Farsi yeh becomes
/// Arabic yeh, Vietnamese extended letters collapse to one, Hiragana/Katakana/Bopomofo/Hangul each collapse to
/// one representative, and kanji map to the first character of their frequency class.
/// </summary>
internal static class LangDetectNormalizer
{
    private static readonly Dictionary<int, int> CjkMap = BuildCjkMap();
    private static readonly Regex AlphabetWithDmark = new(
        "([" + LangDetectTables.ToNormalizeViChars + "])([" + LangDetectTables.DmarkClass + "])", RegexOptions.Compiled);

    private static Dictionary<int, int> BuildCjkMap()
    {
        var map = new Dictionary<int, int>();
        foreach (var cls in LangDetectTables.CjkClasses)
        {
            int representative = cls[0];
            foreach (var ch in cls) map[ch] = representative;
        }
        return map;
    }

    /// <summary>Folds a base letter followed by a combining Vietnamese tone mark into the precomposed letter.</summary>
    public static string NormalizeVi(string text) => AlphabetWithDmark.Replace(text, m =>
    {
        int alphabet = LangDetectTables.ToNormalizeViChars.IndexOf(m.Groups[1].Value[0]);
        int dmark = LangDetectTables.DmarkClass.IndexOf(m.Groups[2].Value[0]);
        return LangDetectTables.NormalizedViChars[dmark][alphabet].ToString();
    });

    /// <summary>Normalises one code point.</summary>
    public static int Normalize(int ch)
    {
        switch (ch)
        {
            case <= 0x7F:
                return ch < 'A' || (ch > 'Z' && ch < 'a') || ch > 'z' ? ' ' : ch;
            case <= 0xFF:
                return LangDetectTables.Latin1Excluded.Contains((char)ch) ? ' ' : ch;
            case >= 0x180 and <= 0x24F:
                return ch == 0x219 ? 0x15F : ch == 0x21B ? 0x163 : ch;
            case >= 0x2000 and <= 0x206F:
                return ' ';
            case >= 0x600 and <= 0x6FF:
                return ch == 0x6CC ? 0x64A : ch;
            case >= 0x1E00 and <= 0x1EFF:
                return ch >= 0x1EA0 ? 0x1EC3 : ch;
            case >= 0x3040 and <= 0x309F:
                return 0x3042;
            case >= 0x30A0 and <= 0x30FF:
                return 0x30A2;
            case >= 0x3100 and <= 0x312F or >= 0x31A0 and <= 0x31BF:
                return 0x3105;
            case >= 0x4E00 and <= 0x9FFF:
                return CjkMap.TryGetValue(ch, out var rep) ? rep : ch;
            case >= 0xAC00 and <= 0xD7AF:
                return 0xAC00;
            default:
                return ch;
        }
    }

    public static string ToStr(int cp) => cp <= 0xFFFF ? ((char)cp).ToString() : new Rune(cp).ToString();
}
