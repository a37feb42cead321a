namespace InstructTune.Tokenizers;

/// <summary>HF WordPiece: greedy longest-match-first over the word, continuation pieces carry the prefix ("##");
/// a word with no full segmentation, or longer than max_input_chars_per_word, becomes the unk token.</summary>
public sealed class WordPieceModel : ITokenModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly string?[] _idToToken;
    private readonly string _unk, _prefix;
    private readonly int _maxChars;

    public WordPieceModel(Dictionary<string, int> vocab, string unk, string prefix, int maxChars)
    {
        _vocab = vocab; _lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _unk = unk; _prefix = prefix; _maxChars = maxChars;
        _idToToken = new string?[vocab.Count == 0 ? 0 : vocab.Values.Max() + 1];
        foreach (var (t, id) in vocab) _idToToken[id] = t;
        if (!vocab.ContainsKey(unk)) throw new TokenizerFormatException($"model.unk_token: \"{unk}\" is not in the vocabulary");
    }

    public int VocabSize => _vocab.Count;
    public int? TokenToId(string token) => _vocab.TryGetValue(token, out int id) ? id : null;
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public void Tokenize(ReadOnlySpan<char> word, List<ModelToken> output)
    {
        int first = output.Count;
        int codePoints = 0;
        for (int i = 0; i < word.Length; i += char.IsHighSurrogate(word[i]) && i + 1 < word.Length ? 2 : 1) codePoints++;
        if (codePoints > _maxChars) { output.Add(new ModelToken(_vocab[_unk], 0, word.Length)); return; }
        Span<char> buf = new char[_prefix.Length + word.Length];
        _prefix.AsSpan().CopyTo(buf);
        int start = 0;
        while (start < word.Length)
        {
            int end = word.Length, found = -1;
            while (end > start)
            {
                ReadOnlySpan<char> key;
                if (start > 0) { word[start..end].CopyTo(buf[_prefix.Length..]); key = buf[..(_prefix.Length + end - start)]; }
                else key = word[..end];
                if (_lookup.TryGetValue(key, out int id)) { found = id; break; }
                end--;
                if (end > start && char.IsLowSurrogate(word[end]) && char.IsHighSurrogate(word[end - 1])) end--;
            }
            if (found < 0)
            {
                output.RemoveRange(first, output.Count - first);
                output.Add(new ModelToken(_vocab[_unk], 0, word.Length));
                return;
            }
            output.Add(new ModelToken(found, start, end));
            start = end;
        }
    }
}
