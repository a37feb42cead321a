using System.Runtime.InteropServices;

namespace InstructTune.Tokenizers;

/// <summary>Special-token ids a tokenizer reports (from tokenizer_config.json, the .model file or a template).</summary>
public sealed record SpecialTokenIds(int? Bos, int? Eos, int? Pad, int? Unk);

/// <summary>
/// A Hugging Face tokenizer.json pipeline: added tokens → normalizer → pre-tokenizer → model → post-processor, and
/// decoder for the way back. Offsets are UTF-16 spans of the caller's string. Lone surrogates are read as U+FFFD
/// (what the HF bindings see when a JS string reaches Rust), one unit for one unit, so offsets are unaffected.
/// Thread-safe: all per-call state is local or thread-static.
/// </summary>
public sealed class HfTokenizer : ITokenizer
{
    private readonly AddedVocabulary _added;
    private readonly INormalizer? _normalizer;
    private readonly IPreTokenizer? _pre;
    private readonly ITokenModel _model;
    private readonly IPostProcessor? _post;
    private readonly IDecoder? _decoder;
    private readonly bool _byteLevel;
    private SpecialTokenIds _special;

    public HfTokenizer(ITokenModel model, AddedVocabulary added, INormalizer? normalizer, IPreTokenizer? pre,
                       IPostProcessor? post, IDecoder? decoder)
    {
        _model = model; _added = added; _normalizer = normalizer; _pre = pre; _post = post; _decoder = decoder;
        _byteLevel = pre?.IsByteLevel ?? false;
        int max = model.VocabSize - 1;
        foreach (var t in added.Tokens) max = Math.Max(max, t.Id);
        VocabSize = max + 1;
        _special = new SpecialTokenIds(null, null, null, null);
    }

    public ITokenModel Model => _model;
    public AddedVocabulary AddedTokens => _added;
    internal IPostProcessor? PostProcessor => _post;

    /// <summary>Sets BOS/EOS/PAD/UNK (the loader does this from tokenizer_config.json).</summary>
    public void SetSpecialTokens(SpecialTokenIds ids) => _special = ids;

    public int VocabSize { get; }
    public int? BosId => _special.Bos;
    public int? EosId => _special.Eos;
    public int? PadId => _special.Pad;
    public int? UnkId => _special.Unk;

    public int? TokenToId(string token) => _added.ByContent(token)?.Id ?? _model.TokenToId(token);
    public string? IdToToken(int id) => _added.ById(id)?.Content ?? _model.IdToToken(id);
    public bool IsSpecialToken(int id) => _added.IsSpecial(id);

    public Encoding Encode(string text, bool addSpecialTokens = false)
    {
        text = UnicodeClass.ReplaceLoneSurrogates(text);
        var ids = new List<int>(text.Length / 3 + 4);
        var offsets = new List<(int Start, int End)>(ids.Capacity);
        var splits = new List<(int Start, int End, int Id)>();
        _added.Split(text, 0, text.Length, normalizedSet: false, splits);
        foreach (var (s, e, id) in splits)
        {
            if (id >= 0) { ids.Add(id); offsets.Add((s, e)); }
            else EncodeSegment(text, s, e, ids, offsets);
        }
        _post?.Process(ids, offsets, addSpecialTokens, IdToToken, text);
        return new Encoding([.. ids], [.. offsets]);
    }

    private void EncodeSegment(string text, int start, int end, List<int> ids, List<(int, int)> offsets)
    {
        var norm = NormalizedText.Identity(text, start, end);
        if (_normalizer != null) norm = _normalizer.Normalize(norm);
        if (!_added.HasNormalized) { EncodeNormalized(norm, 0, norm.Text.Length, ids, offsets); return; }
        var splits = new List<(int Start, int End, int Id)>();
        _added.Split(norm.Text, 0, norm.Text.Length, normalizedSet: true, splits);
        foreach (var (s, e, id) in splits)
        {
            if (id >= 0) { ids.Add(id); offsets.Add(norm.OriginalSpan(s, e)); }
            else EncodeNormalized(norm, s, e, ids, offsets);
        }
    }

    [ThreadStatic] private static List<ModelToken>? t_tokens;

    private void EncodeNormalized(NormalizedText norm, int start, int end, List<int> ids, List<(int, int)> offsets)
    {
        if (end <= start) return;
        var pieces = new List<(int Start, int End)> { (start, end) };
        if (_pre != null) norm = _pre.PreTokenize(norm, pieces);
        var tokens = t_tokens ??= new List<ModelToken>();
        foreach (var (ps, pe) in pieces)
        {
            tokens.Clear();
            if (_byteLevel) { EncodeBytes(norm, ps, pe, ids, offsets, tokens); continue; }
            _model.Tokenize(norm.Text.AsSpan(ps, pe - ps), tokens);
            foreach (var t in tokens) { ids.Add(t.Id); offsets.Add(norm.OriginalSpan(ps + t.Start, ps + t.End)); }
        }
    }

    /// <summary>ByteLevel: the model sees the piece's UTF-8 bytes as ByteLevel characters; a token's offsets cover
    /// the whole characters its bytes belong to.</summary>
    private void EncodeBytes(NormalizedText norm, int ps, int pe, List<int> ids, List<(int, int)> offsets, List<ModelToken> tokens)
    {
        int maxBytes = (pe - ps) * 3;
        char[]? rented = null;
        int[]? rentedMap = null;
        Span<char> chars = maxBytes <= 512 ? stackalloc char[maxBytes] : (rented = new char[maxBytes]);
        Span<int> cpStart = maxBytes <= 512 ? stackalloc int[maxBytes] : (rentedMap = new int[maxBytes]);
        int nb = 0;
        var text = norm.Text;
        Span<byte> buf = stackalloc byte[4];
        for (int i = ps; i < pe;)
        {
            char c = text[i];
            if (c < 0x80) { cpStart[nb] = i; chars[nb++] = ByteLevelAlphabet.ByteToChar((byte)c); i++; continue; }
            int n = char.IsHighSurrogate(c) && i + 1 < pe && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            int k = System.Text.Encoding.UTF8.GetBytes(text.AsSpan(i, n), buf);
            for (int j = 0; j < k; j++) { cpStart[nb] = i; chars[nb++] = ByteLevelAlphabet.ByteToChar(buf[j]); }
            i += n;
        }
        _model.Tokenize(chars[..nb], tokens);
        foreach (var t in tokens)
        {
            int cs = cpStart[t.Start];
            int last = cpStart[t.End - 1];
            int ce = last + (char.IsHighSurrogate(text[last]) && last + 1 < pe ? 2 : 1);
            ids.Add(t.Id);
            offsets.Add(norm.OriginalSpan(cs, ce));
        }
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = new List<string>(ids.Length);
        foreach (var id in ids)
        {
            var added = _added.ById(id);
            if (added != null)
            {
                if (!(skipSpecialTokens && added.Special)) tokens.Add(added.Content);
                continue;
            }
            var t = _model.IdToToken(id);
            if (t != null) tokens.Add(t);
        }
        if (_decoder == null) return string.Join(" ", tokens);
        return string.Concat(_decoder.DecodeChain(tokens));
    }
}
