using System.Text;

namespace InstructTune.Data.Quality;

/// <summary>Normalisation and tokenisation shared by the duplicate and overlap checks.</summary>
public static class TextNormalizer
{
    /// <summary>Lowercase, punctuation dropped, runs of whitespace collapsed to one space, trimmed.</summary>
    public static string Normalize(string text)
    {
        var sb = new StringBuilder(text.Length);
        bool space = false;
        foreach (var ch in text)
        {
            if (char.IsLetterOrDigit(ch)) { if (space && sb.Length > 0) sb.Append(' '); sb.Append(char.ToLowerInvariant(ch)); space = false; }
            else if (char.IsWhiteSpace(ch) || char.IsPunctuation(ch) || char.IsSymbol(ch)) space = true;
            else { sb.Append(ch); space = false; }
        }
        return sb.ToString();
    }

    /// <summary>Lowercase alphanumeric words (what ROUGE's default tokenizer keeps).</summary>
    public static string[] Words(string text) => Normalize(text).Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>64-bit FNV-1a of a string (seeded), for hashing shingles and keys.</summary>
    public static ulong Hash64(ReadOnlySpan<char> s, ulong seed = 14695981039346656037UL)
    {
        ulong h = seed;
        foreach (var c in s) { h ^= c; h *= 1099511628211UL; }
        return Mix(h);
    }

    /// <summary>SplitMix64 finaliser: spreads FNV's weak low bits.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
