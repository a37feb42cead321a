namespace InstructTune.Tokenizers;

/// <summary>HF SplitDelimiterBehavior: what happens to the matched delimiters when a piece is split.</summary>
public enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>
/// A tokenizer.json pre-tokenizer. Pieces are [Start, End) ranges of the normalized text; a pre-tokenizer replaces
/// them with finer ones and may return a rewritten text (Metaspace, ByteLevel add_prefix_space) whose units keep
/// their original spans. Pieces are never empty.
/// </summary>
public interface IPreTokenizer
{
    NormalizedText PreTokenize(NormalizedText text, List<(int Start, int End)> pieces);

    /// <summary>True when the model sees UTF-8 bytes mapped to the ByteLevel alphabet.</summary>
    bool IsByteLevel => false;
}

internal sealed class SequencePreTokenizer(IReadOnlyList<IPreTokenizer> items) : IPreTokenizer
{
    public bool IsByteLevel => items.Any(p => p.IsByteLevel);

    public NormalizedText PreTokenize(NormalizedText text, List<(int Start, int End)> pieces)
    {
        foreach (var p in items) text = p.PreTokenize(text, pieces);
        return text;
    }
}

/// <summary>Splits every piece at the matches of a pattern, then applies the HF delimiter behaviour.</summary>
internal sealed class SplitPreTokenizer(MatchFinder finder, SplitBehavior behavior, bool invert) : IPreTokenizer
{
    public NormalizedText PreTokenize(NormalizedText text, List<(int Start, int End)> pieces)
    {
        SplitAll(text.Text, pieces, finder, behavior, invert);
        return text;
    }

    [ThreadStatic] private static List<(int, int)>? t_matches;
    [ThreadStatic] private static List<(int, int, bool)>? t_segments;
    [ThreadStatic] private static List<(int, int)>? t_out;

    internal static void SplitAll(string text, List<(int Start, int End)> pieces, MatchFinder finder,
                                  SplitBehavior behavior, bool invert)
    {
        var matches = t_matches ??= new();
        var segs = t_segments ??= new();
        var output = t_out ??= new();
        output.Clear();
        foreach (var (ps, pe) in pieces)
        {
            matches.Clear();
            finder(text.AsSpan(ps, pe - ps), matches);
            if (behavior == SplitBehavior.Isolated)
            {
                // Matches and the gaps between them, in order: no need for the segment list.
                int p0 = 0;
                foreach (var (ms, me) in matches)
                {
                    if (ms > p0) output.Add((ps + p0, ps + ms));
                    output.Add((ps + ms, ps + me));
                    p0 = me;
                }
                if (p0 < pe - ps) output.Add((ps + p0, pe));
                continue;
            }
            // Cover the piece with alternating (non-)match segments, as HF find_matches does.
            segs.Clear();
            int pos = 0;
            foreach (var (ms, me) in matches)
            {
                if (ms > pos) segs.Add((ps + pos, ps + ms, invert));
                segs.Add((ps + ms, ps + me, !invert));
                pos = me;
            }
            if (pos < pe - ps) segs.Add((ps + pos, pe, invert));
            Apply(segs, behavior, output);
        }
        pieces.Clear();
        foreach (var p in output) if (p.Item2 > p.Item1) pieces.Add(p);
    }

    private static void Apply(List<(int S, int E, bool IsMatch)> segs, SplitBehavior behavior, List<(int, int)> output)
    {
        int first = output.Count;
        bool prevMatch = false;
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                foreach (var (s, e, _) in segs) output.Add((s, e));
                break;
            case SplitBehavior.Removed:
                foreach (var (s, e, m) in segs) if (!m) output.Add((s, e));
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach (var (s, e, m) in segs)
                {
                    if (m && !prevMatch && output.Count > first) output[^1] = (output[^1].Item1, e);
                    else output.Add((s, e));
                    prevMatch = m;
                }
                break;
            case SplitBehavior.MergedWithNext:
                // HF folds from the right: a match joins the segment after it.
                var rev = new List<(int, int)>();
                for (int k = segs.Count - 1; k >= 0; k--)
                {
                    var (s, e, m) = segs[k];
                    if (m && !prevMatch && rev.Count > 0) rev[^1] = (s, rev[^1].Item2);
                    else rev.Add((s, e));
                    prevMatch = m;
                }
                for (int k = rev.Count - 1; k >= 0; k--) output.Add(rev[k]);
                break;
            case SplitBehavior.Contiguous:
                foreach (var (s, e, m) in segs)
                {
                    if (m == prevMatch && output.Count > first) output[^1] = (output[^1].Item1, e);
                    else output.Add((s, e));
                    prevMatch = m;
                }
                break;
        }
    }
}

/// <summary>ByteLevel: optional leading space per piece, optional GPT-2 regex split; the model then sees bytes.</summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : IPreTokenizer
{
    public bool IsByteLevel => true;

    public NormalizedText PreTokenize(NormalizedText text, List<(int Start, int End)> pieces)
    {
        if (addPrefixSpace) text = PieceRewriter.Rewrite(text, pieces, (t, s, e) => t.Text[s] == ' ' ? null : " ", null);
        if (useRegex) SplitPreTokenizer.SplitAll(text.Text, pieces, SplitPatterns.FindGpt2, SplitBehavior.Isolated, false);
        return text;
    }
}

/// <summary>Metaspace: spaces become the replacement (▁), a ▁ is prepended per prepend_scheme, then split before
/// each ▁ (MergedWithNext).</summary>
internal sealed class MetaspacePreTokenizer(char replacement, string prependScheme, bool split) : IPreTokenizer
{
    public NormalizedText PreTokenize(NormalizedText text, List<(int Start, int End)> pieces)
    {
        var rep = replacement.ToString();
        text = PieceRewriter.Rewrite(text, pieces, (t, s, e) =>
        {
            if (t.Text[s] == replacement || t.Text[s] == ' ') return null; // already starts with ▁ after replace
            return prependScheme switch
            {
                "always" => rep,
                "first" => t.OriginalStart(s) == 0 ? rep : null,
                _ => null,
            };
        }, c => c == ' ' ? replacement : c);
        if (split)
            SplitPreTokenizer.SplitAll(text.Text, pieces, SplitPatterns.ForLiteral(rep), SplitBehavior.MergedWithNext, false);
        return text;
    }
}

/// <summary>Rebuilds the text from its pieces, with an optional prefix per piece and a per-unit map.</summary>
internal static class PieceRewriter
{
    public static NormalizedText Rewrite(NormalizedText text, List<(int Start, int End)> pieces,
                                         Func<NormalizedText, int, int, string?> prefix, Func<char, char>? map)
    {
        var b = new NormalizedBuilder(text.Text.Length + pieces.Count);
        for (int k = 0; k < pieces.Count; k++)
        {
            var (s, e) = pieces[k];
            int ns = b.Length;
            var p = prefix(text, s, e);
            UnicodeClass.CodePointAt(text.Text, s, out int first);
            if (p != null) b.Append(p, text.OriginalStart(s), text.OriginalEnd(s + first)); // aligned with the first character
            for (int i = s; i < e; i++)
                b.Append(map == null ? text.Text[i] : map(text.Text[i]), text.OriginalStart(i), text.OriginalEnd(i + 1));
            pieces[k] = (ns, b.Length);
        }
        return b.Build();
    }
}

/// <summary>Whitespace: keeps runs of word characters and runs of other non-space characters (`\w+|[^\w\s]+`).</summary>
internal sealed class WhitespacePreTokenizer : IPreTokenizer
{
    public NormalizedText PreTokenize(NormalizedText text, List<(int Start, int End)> pieces)
    {
        SplitPreTokenizer.SplitAll(text.Text, pieces, Find, SplitBehavior.Removed, invert: true);
        return text;
    }

    private static void Find(ReadOnlySpan<char> s, List<(int Start, int End)> matches)
    {
        int i = 0;
        while (i < s.Length)
        {
            int cp = UnicodeClass.CodePointAt(s, i, out int n);
            if (UnicodeClass.IsWhiteSpace(cp)) { i += n; continue; }
            bool word = UnicodeClass.IsWordChar(cp);
            int j = i + n;
            while (j < s.Length)
            {
                int c2 = UnicodeClass.CodePointAt(s, j, out int m);
                if (UnicodeClass.IsWhiteSpace(c2) || UnicodeClass.IsWordChar(c2) != word) break;
                j += m;
            }
            matches.Add((i, j));
            i = j;
        }
    }
}

/// <summary>Splits on a code point predicate with a behaviour (WhitespaceSplit, Digits, Punctuation).</summary>
internal sealed class PredicatePreTokenizer(Func<int, bool> pred, SplitBehavior behavior) : IPreTokenizer
{
    private readonly MatchFinder _finder = SplitPatterns.ForPredicate(pred);

    public NormalizedText PreTokenize(NormalizedText text, List<(int Start, int End)> pieces)
    {
        SplitPreTokenizer.SplitAll(text.Text, pieces, _finder, behavior, false);
        return text;
    }
}
