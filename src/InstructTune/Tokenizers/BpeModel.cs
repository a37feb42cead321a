using System.Collections.Concurrent;

namespace InstructTune.Tokenizers;

/// <summary>A tokenizer.json model: turns one pre-tokenized word into model tokens.</summary>
public interface ITokenModel
{
    int VocabSize { get; }
    int? TokenToId(string token);
    string? IdToToken(int id);
    /// <summary>Appends the tokens of word; Start/End are in units of word.</summary>
    void Tokenize(ReadOnlySpan<char> word, List<ModelToken> output);
}

/// <summary>Options of the HF BPE model (tokenizer.json "model" with type "BPE").</summary>
public sealed record BpeOptions(
    string? UnkToken = null, string? ContinuingSubwordPrefix = null, string? EndOfWordSuffix = null,
    bool FuseUnk = false, bool ByteFallback = false, bool IgnoreMerges = false);

/// <summary>
/// HF BPE: vocabulary + ranked merges. Initial symbols are the word's code points (with the continuing-subword
/// prefix / end-of-word suffix), unknown ones become &lt;0xXX&gt; byte tokens (byte_fallback) or unk (fused when
/// fuse_unk) or are dropped when there is no unk token, as HF does. Results per word are cached.
/// </summary>
public sealed class BpeModel : ITokenModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabSpan;
    private readonly string?[] _idToToken;
    private readonly BpeMerger _merger;
    private readonly BpeOptions _o;
    private readonly int[]? _charIds;      // BMP char → id when there is no prefix/suffix; -1 if absent
    private readonly int[] _byteIds = new int[256];
    private readonly int _unkId = -1;
    private readonly ConcurrentDictionary<string, (int[] Ids, int[] Ends)> _cache = new();
    private readonly ConcurrentDictionary<string, (int[] Ids, int[] Ends)>.AlternateLookup<ReadOnlySpan<char>> _cacheSpan;
    private const int MaxCachedWordLength = 64, MaxCacheEntries = 200_000;

    public BpeOptions Options => _o;
    internal IReadOnlyDictionary<string, int> Vocab => _vocab;
    internal BpeMerger Merger => _merger;

    /// <summary>merges are (left, right) token strings in rank order; every token of a merge and its result must be
    /// in the vocabulary (the error names the merge index).</summary>
    public BpeModel(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges, BpeOptions options)
    {
        _vocab = vocab;
        _vocabSpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _o = options;
        int max = vocab.Count == 0 ? -1 : vocab.Values.Max();
        _idToToken = new string?[max + 1];
        foreach (var (t, id) in vocab)
        {
            if (id < 0) throw new TokenizerFormatException($"model.vocab: token {Quote(t)} has negative id {id}");
            _idToToken[id] = t;
        }
        int prefixLen = options.ContinuingSubwordPrefix?.Length ?? 0;
        var table = new Dictionary<long, long>(merges.Count);
        for (int r = 0; r < merges.Count; r++)
        {
            var (a, b) = merges[r];
            if (!vocab.TryGetValue(a, out int ia))
                throw new TokenizerFormatException($"model.merges[{r}] \"{a} {b}\": token {Quote(a)} is not in the vocabulary");
            if (!vocab.TryGetValue(b, out int ib))
                throw new TokenizerFormatException($"model.merges[{r}] \"{a} {b}\": token {Quote(b)} is not in the vocabulary");
            string merged = a + (prefixLen > 0 && b.StartsWith(options.ContinuingSubwordPrefix!, StringComparison.Ordinal) ? b[prefixLen..] : b);
            if (!vocab.TryGetValue(merged, out int im))
                throw new TokenizerFormatException($"model.merges[{r}] \"{a} {b}\": merged token {Quote(merged)} is not in the vocabulary");
            table.TryAdd(BpeMerger.Key(ia, ib), ((long)r << 32) | (uint)im); // first (lowest) rank wins, as HF
        }
        _merger = new BpeMerger(table);
        if (string.IsNullOrEmpty(options.ContinuingSubwordPrefix) && string.IsNullOrEmpty(options.EndOfWordSuffix))
        {
            _charIds = new int[65536];
            Array.Fill(_charIds, -1);
            foreach (var (t, id) in vocab) if (t.Length == 1) _charIds[t[0]] = id;
        }
        for (int b = 0; b < 256; b++) _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
        if (options.UnkToken != null && vocab.TryGetValue(options.UnkToken, out int u)) _unkId = u;
        _cacheSpan = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    private static string Quote(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    public int VocabSize => _vocab.Count;
    public int? TokenToId(string token) => _vocab.TryGetValue(token, out int id) ? id : null;
    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public void Tokenize(ReadOnlySpan<char> word, List<ModelToken> output)
    {
        if (word.Length == 0) return;
        bool cacheable = word.Length <= MaxCachedWordLength;
        if (cacheable && _cacheSpan.TryGetValue(word, out var hit))
        {
            int s = 0;
            for (int k = 0; k < hit.Ids.Length; k++) { output.Add(new ModelToken(hit.Ids[k], s, hit.Ends[k])); s = hit.Ends[k]; }
            return;
        }
        int first = output.Count;
        if (_o.IgnoreMerges && _vocabSpan.TryGetValue(word, out int whole))
            output.Add(new ModelToken(whole, 0, word.Length));
        else
            MergeWord(word, output);
        if (cacheable && _cache.Count < MaxCacheEntries && Contiguous(output, first))
        {
            int n = output.Count - first;
            var ids = new int[n]; var ends = new int[n];
            for (int k = 0; k < n; k++) { ids[k] = output[first + k].Id; ends[k] = output[first + k].End; }
            _cacheSpan.TryAdd(word, (ids, ends));
        }
    }

    // Byte-fallback tokens share their character's span, so they cannot be replayed from ends alone.
    private static bool Contiguous(List<ModelToken> o, int first)
    {
        for (int k = first + 1; k < o.Count; k++) if (o[k].Start != o[k - 1].End) return false;
        return true;
    }

    private void MergeWord(ReadOnlySpan<char> word, List<ModelToken> output)
    {
        var ws = BpeMerger.Begin(word.Length + 4);
        Span<char> buf = stackalloc char[64];
        bool lastWasUnk = false;
        for (int i = 0; i < word.Length;)
        {
            UnicodeClass.CodePointAt(word, i, out int n);
            bool last = i + n == word.Length;
            int id = -1;
            if (_charIds != null)
            {
                if (n == 1) id = _charIds[word[i]];
                else if (_vocabSpan.TryGetValue(word.Slice(i, n), out int v)) id = v;
            }
            else
            {
                var key = SymbolKey(word.Slice(i, n), i > 0, last, buf);
                if (_vocabSpan.TryGetValue(key, out int v)) id = v;
            }
            if (id >= 0) { ws.Add(id, i, i + n); lastWasUnk = false; }
            else if (_o.ByteFallback && TryAddBytes(ws, word.Slice(i, n), i, i + n)) lastWasUnk = false;
            else if (_unkId >= 0)
            {
                if (_o.FuseUnk && lastWasUnk) ws.End[ws.Count - 1] = i + n;
                else ws.Add(_unkId, i, i + n);
                lastWasUnk = true;
            }
            i += n;
        }
        _merger.MergeAll(ws, output);
    }

    private ReadOnlySpan<char> SymbolKey(ReadOnlySpan<char> ch, bool continuing, bool last, Span<char> buf)
    {
        var p = continuing ? _o.ContinuingSubwordPrefix ?? "" : "";
        var sfx = last ? _o.EndOfWordSuffix ?? "" : "";
        int len = p.Length + ch.Length + sfx.Length;
        if (len > buf.Length) buf = new char[len];
        p.AsSpan().CopyTo(buf); ch.CopyTo(buf[p.Length..]); sfx.AsSpan().CopyTo(buf[(p.Length + ch.Length)..]);
        return buf[..len];
    }

    private bool TryAddBytes(BpeMerger.Workspace ws, ReadOnlySpan<char> ch, int start, int end)
    {
        Span<byte> bytes = stackalloc byte[8];
        int nb = System.Text.Encoding.UTF8.GetBytes(ch, bytes);
        for (int k = 0; k < nb; k++) if (_byteIds[bytes[k]] < 0) return false;
        for (int k = 0; k < nb; k++) ws.Add(_byteIds[bytes[k]], start, end);
        return true;
    }
}
