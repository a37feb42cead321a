using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace InstructTune.Tokenizers;

/// <summary>A tokenizer.json normalizer: rewrites text while keeping each unit's original span.</summary>
public interface INormalizer
{
    NormalizedText Normalize(NormalizedText input);
}

/// <summary>Sequence: each normalizer in turn.</summary>
internal sealed class SequenceNormalizer(IReadOnlyList<INormalizer> items) : INormalizer
{
    public NormalizedText Normalize(NormalizedText input)
    {
        foreach (var n in items) input = n.Normalize(input);
        return input;
    }
}

/// <summary>NFC / NFD / NFKC / NFKD. Units produced from a cluster (a code point and its following marks) all map to
/// the cluster's original span, so offsets stay on character boundaries of the input.</summary>
internal sealed class UnicodeNormalizer(NormalizationForm form) : INormalizer
{
    public NormalizedText Normalize(NormalizedText input)
    {
        var text = input.Text;
        if (UnicodeNormalization.IsTriviallyNormalized(text, form)) return input;
        bool changed = false;
        var b = new NormalizedBuilder(text.Length + 8);
        int i = 0;
        while (i < text.Length)
        {
            int start = i;
            UnicodeClass.CodePointAt(text, i, out int n);
            i += n;
            while (i < text.Length)
            {
                int cp = UnicodeClass.CodePointAt(text, i, out n);
                if (!UnicodeNormalization.AttachesToPrevious(cp, form)) break;
                i += n;
            }
            var cluster = text.AsSpan(start, i - start);
            string norm = UnicodeNormalization.Normalize(cluster, form);
            if (cluster.SequenceEqual(norm)) { b.AppendFrom(input, start, i); continue; }
            changed = true;
            // As HF's alignments: the k-th output character takes the k-th input character's span; surplus
            // output characters (decomposition) take the last one's; surplus input characters are dropped.
            var starts = new List<int>();
            for (int k = start; k < i; k += char.IsHighSurrogate(text[k]) && k + 1 < i ? 2 : 1) starts.Add(k);
            int cpIndex = 0;
            for (int k = 0; k < norm.Length; cpIndex++)
            {
                int src = starts[Math.Min(cpIndex, starts.Count - 1)];
                int srcEnd = src + (char.IsHighSurrogate(text[src]) && src + 1 < i ? 2 : 1);
                int len = char.IsHighSurrogate(norm[k]) && k + 1 < norm.Length ? 2 : 1;
                b.Append(norm.AsSpan(k, len), input.OriginalStart(src), input.OriginalEnd(srcEnd));
                k += len;
            }
        }
        return changed ? b.Build() : input;
    }
}

/// <summary>Lowercase, code point by code point, as Rust's char::to_lowercase (İ gives "i̇").</summary>
internal sealed class LowercaseNormalizer : INormalizer
{
    public NormalizedText Normalize(NormalizedText input)
    {
        var text = input.Text;
        var b = new NormalizedBuilder(text.Length);
        Span<char> buf = stackalloc char[2];
        for (int i = 0; i < text.Length;)
        {
            int cp = UnicodeClass.CodePointAt(text, i, out int n);
            int os = input.OriginalStart(i), oe = input.OriginalEnd(i + n);
            if (cp == 0x130) b.Append("i\u0307", os, oe);
            else if (cp is >= 0xD800 and <= 0xDFFF) b.Append((char)cp, os, oe);
            else
            {
                int len = Rune.ToLowerInvariant(new Rune(cp)).EncodeToUtf16(buf);
                b.Append(buf[..len], os, oe);
            }
            i += n;
        }
        return b.Build();
    }
}

/// <summary>Strip: removes White_Space at the left and/or right end.</summary>
internal sealed class StripNormalizer(bool left, bool right) : INormalizer
{
    public NormalizedText Normalize(NormalizedText input)
    {
        var t = input.Text;
        int s = 0, e = t.Length;
        if (left) while (s < e && UnicodeClass.IsWhiteSpace(t[s])) s++;
        if (right) while (e > s && UnicodeClass.IsWhiteSpace(t[e - 1])) e--;
        if (s == 0 && e == t.Length) return input;
        var b = new NormalizedBuilder(e - s);
        b.AppendFrom(input, s, e);
        return b.Build();
    }
}

/// <summary>StripAccents: drops every combining mark (Mn, Mc, Me, as HF's is_combining_mark; meant to follow NFD/NFKD).</summary>
internal sealed class StripAccentsNormalizer : INormalizer
{
    public NormalizedText Normalize(NormalizedText input)
    {
        var t = input.Text;
        var b = new NormalizedBuilder(t.Length);
        for (int i = 0; i < t.Length; i++)
            if (char.GetUnicodeCategory(t[i]) is not (UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark
                    or UnicodeCategory.EnclosingMark)) b.AppendFrom(input, i, i + 1);
        return b.Build();
    }
}

/// <summary>Prepend: puts a string in front of non-empty text; the new units share the first unit's span.</summary>
internal sealed class PrependNormalizer(string prepend) : INormalizer
{
    public NormalizedText Normalize(NormalizedText input)
    {
        if (input.Text.Length == 0) return input;
        var b = new NormalizedBuilder(input.Text.Length + prepend.Length);
        UnicodeClass.CodePointAt(input.Text, 0, out int first);
        b.Append(prepend, input.OriginalStart(0), input.OriginalEnd(first)); // aligned with the first character
        b.AppendFrom(input, 0, input.Text.Length);
        return b.Build();
    }
}

/// <summary>Replace: every match of a literal or regex pattern becomes content; the replacement units share the
/// matched span.</summary>
internal sealed class ReplaceNormalizer(string? literal, Regex? regex, string content) : INormalizer
{
    public NormalizedText Normalize(NormalizedText input)
    {
        var matches = Find(input.Text, literal, regex);
        if (matches.Count == 0) return input;
        var b = new NormalizedBuilder(input.Text.Length + 8);
        int pos = 0;
        foreach (var (s, e) in matches)
        {
            b.AppendFrom(input, pos, s);
            b.Append(content, input.OriginalStart(s), input.OriginalEnd(e));
            pos = e;
        }
        b.AppendFrom(input, pos, input.Text.Length);
        return b.Build();
    }

    /// <summary>Non-overlapping, non-empty matches left to right.</summary>
    internal static List<(int Start, int End)> Find(string text, string? literal, Regex? regex)
    {
        var r = new List<(int, int)>();
        if (literal != null)
        {
            if (literal.Length == 0) return r;
            for (int i = text.IndexOf(literal, StringComparison.Ordinal); i >= 0;
                 i = text.IndexOf(literal, i + literal.Length, StringComparison.Ordinal))
                r.Add((i, i + literal.Length));
        }
        else
        {
            foreach (Match m in regex!.Matches(text))
                if (m.Length > 0) r.Add((m.Index, m.Index + m.Length));
        }
        return r;
    }
}
