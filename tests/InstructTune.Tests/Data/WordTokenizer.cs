using InstructTune.Tokenizers;

namespace InstructTune.Tests.Data;

/// <summary>
/// A small test tokenizer (not a real one): special strings are single tokens; a run of whitespace is glued to the
/// word that follows it (as SentencePiece glues "▁"), so "\nParis" is one token that crosses the boundary between
/// the "### Response:\n" template text and the response; punctuation is one token per character. Ids are assigned
/// on first sight (under a lock, so the parallel prepare pipeline can use it); BOS = 1, EOS = 2, PAD configurable (default 0).
/// </summary>
public sealed class WordTokenizer(int? padId = 0) : ITokenizer
{
    private static readonly string[] Specials = ["<unk>", "<s>", "</s>", "<|im_end|>", "<|im_start|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"];
    private readonly Dictionary<string, int> _ids = Specials.Select((s, i) => (s, i)).ToDictionary(p => p.s, p => p.i);
    private readonly List<string> _tokens = [.. Specials];

    public int VocabSize => _tokens.Count;
    public int? BosId => 1;
    public int? EosId => 2;
    public int? PadId => padId;
    public int? UnkId => 0;

    public Encoding Encode(string text, bool addSpecialTokens = false)
    {
        var ids = new List<int>();
        var offsets = new List<(int, int)>();
        if (addSpecialTokens) { ids.Add(1); offsets.Add((0, 0)); }
        int i = 0;
        while (i < text.Length)
        {
            int start = i;
            var special = Specials.Skip(1).FirstOrDefault(s => string.CompareOrdinal(text, i, s, 0, s.Length) == 0);
            if (special != null) { i += special.Length; Add(text[start..i]); continue; }
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            if (i < text.Length && char.IsLetterOrDigit(text[i]))
                while (i < text.Length && char.IsLetterOrDigit(text[i])) i++;
            else if (i < text.Length && !IsSpecialStart(text, i)) i++;
            Add(text[start..i]);
        }
        return new Encoding([.. ids], [.. offsets]);

        void Add(string piece)
        {
            int id;
            lock (_ids)
                if (!_ids.TryGetValue(piece, out id)) { id = _tokens.Count; _ids[piece] = id; _tokens.Add(piece); }
            ids.Add(id);
            offsets.Add((start: i - piece.Length, end: i));
        }
    }

    private static bool IsSpecialStart(string text, int i) => Specials.Skip(1).Any(s => string.CompareOrdinal(text, i, s, 0, s.Length) == 0);

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var id in ids)
            if (!(skipSpecialTokens && id < Specials.Length)) sb.Append(IdToToken(id));
        return sb.ToString();
    }

    public int? TokenToId(string token) { lock (_ids) return _ids.TryGetValue(token, out var id) ? id : null; }
    public string? IdToToken(int id) { lock (_ids) return id >= 0 && id < _tokens.Count ? _tokens[id] : null; }
}
