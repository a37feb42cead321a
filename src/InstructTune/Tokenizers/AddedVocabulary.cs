namespace InstructTune.Tokenizers;

/// <summary>A tokenizer.json added token (special tokens such as &lt;s&gt; and user-added ones).</summary>
public sealed record AddedToken(int Id, string Content, bool SingleWord = false, bool LStrip = false,
                                bool RStrip = false, bool Normalized = false, bool Special = true);

/// <summary>
/// Added tokens are matched before the model, leftmost-longest, as HF's AddedVocabulary does: tokens with
/// normalized=false on the raw input, the others on each normalized piece. single_word rejects a match glued to a
/// word character; lstrip/rstrip widen a match over the white space beside it (never back into a previous match).
/// </summary>
public sealed class AddedVocabulary
{
    private readonly Dictionary<string, AddedToken> _byContent = new(StringComparer.Ordinal);
    private readonly Dictionary<int, AddedToken> _byId = new();
    private readonly Matcher _raw, _normalized;

    public AddedVocabulary(IEnumerable<AddedToken> tokens)
    {
        foreach (var t in tokens) { _byContent[t.Content] = t; _byId[t.Id] = t; }
        _raw = new Matcher(_byContent.Values.Where(t => !t.Normalized));
        _normalized = new Matcher(_byContent.Values.Where(t => t.Normalized));
    }

    public IReadOnlyCollection<AddedToken> Tokens => _byId.Values;
    public bool IsEmpty => _byId.Count == 0;
    public bool HasNormalized => !_normalized.IsEmpty;
    public AddedToken? ById(int id) => _byId.GetValueOrDefault(id);
    public AddedToken? ByContent(string content) => _byContent.GetValueOrDefault(content);

    public bool IsSpecial(int id) => _byId.TryGetValue(id, out var t) && t.Special;

    /// <summary>Splits s[start..end) into (Start, End, TokenId or -1) pieces using the raw or normalized tokens.</summary>
    public void Split(string s, int start, int end, bool normalizedSet, List<(int Start, int End, int Id)> output)
    {
        var m = normalizedSet ? _normalized : _raw;
        if (m.IsEmpty) { output.Add((start, end, -1)); return; }
        int pos = start;
        int i = start;
        while (i < end)
        {
            int next = m.NextCandidate(s, i, end);   // vectorized skip to a possible first character
            if (next < 0) break;
            i = next;
            var tok = m.LongestAt(s, i, end);
            if (tok == null) { i++; continue; }
            int ms = i, me = i + tok.Content.Length;
            if (tok.SingleWord && !(IsWordBoundaryBefore(s, start, ms) && IsWordBoundaryAfter(s, me, end)))
            {
                i = me; // HF skips the rejected match and continues after it
                continue;
            }
            if (tok.LStrip) while (ms > pos && UnicodeClass.IsWhiteSpace(s[ms - 1])) ms--;
            if (tok.RStrip) while (me < end && UnicodeClass.IsWhiteSpace(s[me])) me++;
            if (ms > pos) output.Add((pos, ms, -1));
            output.Add((ms, me, tok.Id));
            pos = me; i = me;
        }
        if (pos < end) output.Add((pos, end, -1));
    }

    private static bool IsWordBoundaryBefore(string s, int start, int i)
    {
        if (i <= start) return true;
        int k = i - 1;
        if (char.IsLowSurrogate(s[k]) && k > start && char.IsHighSurrogate(s[k - 1])) k--;
        return !UnicodeClass.IsAlphanumeric(UnicodeClass.CodePointAt(s, k, out _));
    }

    private static bool IsWordBoundaryAfter(string s, int i, int end) =>
        i >= end || !UnicodeClass.IsAlphanumeric(UnicodeClass.CodePointAt(s, i, out _));

    /// <summary>First char → candidates, longest first; enough for the few hundred tokens real models add.</summary>
    private sealed class Matcher
    {
        private readonly Dictionary<char, AddedToken[]> _byFirst;

        public Matcher(IEnumerable<AddedToken> tokens)
        {
            _byFirst = tokens.Where(t => t.Content.Length > 0).GroupBy(t => t.Content[0])
                .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
            _firstChars = System.Buffers.SearchValues.Create(_byFirst.Keys.ToArray());
        }

        private readonly System.Buffers.SearchValues<char> _firstChars;

        public bool IsEmpty => _byFirst.Count == 0;

        public int NextCandidate(string s, int i, int end)
        {
            int k = s.AsSpan(i, end - i).IndexOfAny(_firstChars);
            return k < 0 ? -1 : i + k;
        }

        public AddedToken? LongestAt(string s, int i, int end)
        {
            if (!_byFirst.TryGetValue(s[i], out var cands)) return null;
            var span = s.AsSpan(i, end - i);
            foreach (var t in cands)
                if (span.StartsWith(t.Content, StringComparison.Ordinal)) return t;
            return null;
        }
    }
}
