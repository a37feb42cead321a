using System.Text;

namespace InstructTune.Tokenizers.SentencePiece;

/// <summary>
/// A SentencePiece .model (BPE or Unigram) encoded as python3-sentencepiece does: normalize (charsmap, white space,
/// dummy prefix, ▁ escaping), user-defined pieces kept whole, then the model over the whole normalized string, then
/// unknown symbols to &lt;0xXX&gt; bytes (byte_fallback) or fused unk. BPE merges the adjacent pair whose concatenation
/// has the highest score (leftmost on ties) — expressed as a rank table for the shared <see cref="BpeMerger"/>.
/// Decode follows SentencePiece: control pieces dropped (written out when not skipping), unk as its surface text,
/// byte pieces joined as UTF-8 (one U+FFFD per invalid byte), ▁ as space, the first ▁ dropped with a dummy prefix.
/// </summary>
public sealed class SentencePieceTokenizer : ITokenizer
{
    private readonly SentencePieceModelProto _p;
    private readonly SentencePieceNormalizer _normalizer;
    private readonly Dictionary<string, int> _pieces = new(StringComparer.Ordinal); // NORMAL, USER_DEFINED, UNUSED
    private readonly Dictionary<string, int> _all = new(StringComparer.Ordinal);
    private readonly BpeMerger? _bpe;
    private readonly UnigramModel? _unigram;
    private readonly int[] _charIds = new int[65536];
    private readonly int[] _byteIds = new int[256];
    private readonly string[] _userDefined;
    private readonly bool _addBos, _addEos;

    public SentencePieceModelProto Proto => _p;

    private SentencePieceTokenizer(SentencePieceModelProto p, string path, bool addBos, bool addEos)
    {
        _p = p; _addBos = addBos; _addEos = addEos;
        _normalizer = new SentencePieceNormalizer(p, p.PrecompiledCharsmap.Length > 0 ? new PrecompiledCharsmap(p.PrecompiledCharsmap, path) : null);
        Array.Fill(_charIds, -1);
        Array.Fill(_byteIds, -1);
        for (int i = 0; i < p.Pieces.Count; i++)
        {
            var e = p.Pieces[i];
            _all.TryAdd(e.Piece, i);
            if (e.Type is PieceType.Normal or PieceType.UserDefined or PieceType.Unused)
            {
                _pieces.TryAdd(e.Piece, i);
                if (e.Piece.Length == 1 && e.Type != PieceType.Unused) _charIds[e.Piece[0]] = i;
            }
            if (e.Type == PieceType.Byte && ByteFallbackDecoder.ParseByteToken(e.Piece) is int b and >= 0) _byteIds[b] = i;
        }
        _userDefined = p.Pieces.Where(e => e.Type == PieceType.UserDefined).Select(e => e.Piece)
            .OrderByDescending(s => s.Length).ToArray();
        _splitAtMeta = !p.Pieces.Any(e => e.Piece.AsSpan().TrimStart('\u2581').Contains('\u2581'));
        if (p.ModelType == 2) _bpe = BuildMerges();
        else _unigram = new UnigramModel(p.Pieces.Select(e => (e.Piece, (double)e.Score)).ToList(), p.UnkId, p.ByteFallback,
            floatScores: true, inLattice: i => p.Pieces[i].Type is PieceType.Normal or PieceType.UserDefined);
        VocabSize = p.Pieces.Count;
    }

    public static SentencePieceTokenizer Load(string path, TokenizerConfig? config = null, string? configPath = null)
    {
        var proto = SentencePieceModelProto.Parse(File.ReadAllBytes(path), path);
        // With no config: BOS when the model has one, else EOS (what LlamaTokenizer / T5Tokenizer add).
        bool addBos = config?.AddBos ?? proto.BosId >= 0;
        bool addEos = config?.AddEos ?? (proto.BosId < 0 && proto.EosId >= 0);
        var tok = new SentencePieceTokenizer(proto, path, addBos, addEos);
        var fallback = new SpecialTokenIds(Id(proto.BosId, proto), Id(proto.EosId, proto), Id(proto.PadId, proto), Id(proto.UnkId, proto));
        tok._special = config == null ? fallback : config.Resolve(tok, configPath ?? path, fallback);
        return tok;
    }

    private static int? Id(int id, SentencePieceModelProto p) => id >= 0 && id < p.Pieces.Count ? id : null;

    private SpecialTokenIds _special = new(null, null, null, null);

    /// <summary>Every pair (a, b) with a, b and a+b pieces, ranked by the score of a+b (higher first; equal scores
    /// share a rank so position decides, as in SentencePiece's agenda).</summary>
    private BpeMerger BuildMerges()
    {
        var scoreRank = _p.Pieces.Select(e => e.Score).Distinct().OrderByDescending(s => s)
            .Select((s, r) => (s, r)).ToDictionary(x => x.s, x => x.r);
        var table = new Dictionary<long, long>();
        foreach (var (piece, id) in _pieces)
        {
            if (_p.Pieces[id].Type == PieceType.Unused) continue;
            for (int k = 1; k < piece.Length; k++)
            {
                if (char.IsLowSurrogate(piece[k])) continue;
                if (_pieces.TryGetValue(piece[..k], out int l) && _pieces.TryGetValue(piece[k..], out int r))
                    table[BpeMerger.Key(l, r)] = ((long)scoreRank[_p.Pieces[id].Score] << 32) | (uint)id;
            }
        }
        return new BpeMerger(table);
    }

    public int VocabSize { get; }
    public int? BosId => _special.Bos;
    public int? EosId => _special.Eos;
    public int? PadId => _special.Pad;
    public int? UnkId => _special.Unk;

    public int? TokenToId(string token) => _all.TryGetValue(token, out int id) ? id : null;
    public string? IdToToken(int id) => (uint)id < (uint)_p.Pieces.Count ? _p.Pieces[id].Piece : null;
    public bool IsSpecialToken(int id) => (uint)id < (uint)_p.Pieces.Count && _p.Pieces[id].Type == PieceType.Control;

    [ThreadStatic] private static List<ModelToken>? t_tokens;

    public Encoding Encode(string text, bool addSpecialTokens = false)
    {
        text = UnicodeClass.ReplaceLoneSurrogates(text);
        var norm = _normalizer.Normalize(text);
        var tokens = t_tokens ??= new List<ModelToken>();
        tokens.Clear();
        if (_bpe != null) EncodeBpe(norm.Text, tokens);
        else _unigram!.Tokenize(norm.Text, tokens);

        var ids = new List<int>(tokens.Count + 2);
        var offsets = new List<(int, int)>(tokens.Count + 2);
        if (addSpecialTokens && _addBos && _p.BosId >= 0) { ids.Add(_p.BosId); offsets.Add((0, 0)); }
        foreach (var t in tokens) { ids.Add(t.Id); offsets.Add(norm.OriginalSpan(t.Start, t.End)); }
        if (addSpecialTokens && _addEos && _p.EosId >= 0) { ids.Add(_p.EosId); offsets.Add((0, 0)); }
        return new Encoding([.. ids], [.. offsets]);
    }

    // True when no piece has ▁ after another character: then no merge crosses the point before a ▁ that follows a
    // non-▁, the text splits into independent words there, and words can be cached (Llama 2: true).
    private readonly bool _splitAtMeta;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ModelToken[]> _cache = new();
    private const int MaxCachedWord = 64, MaxCacheEntries = 200_000;

    private void EncodeBpe(string s, List<ModelToken> output)
    {
        if (!_splitAtMeta) { EncodeBpeWord(s, 0, s.Length, output); return; }
        var lookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
        int start = 0;
        for (int i = 1; i <= s.Length; i++)
        {
            if (i < s.Length && !(s[i] == '\u2581' && s[i - 1] != '\u2581')) continue;
            int len = i - start;
            if (len <= MaxCachedWord && lookup.TryGetValue(s.AsSpan(start, len), out var hit))
                foreach (var t in hit) output.Add(new ModelToken(t.Id, t.Start + start, t.End + start));
            else
            {
                int first = output.Count;
                EncodeBpeWord(s, start, i, output);
                if (len <= MaxCachedWord && _cache.Count < MaxCacheEntries)
                {
                    var toks = new ModelToken[output.Count - first];
                    for (int k = 0; k < toks.Length; k++) { var t = output[first + k]; toks[k] = new ModelToken(t.Id, t.Start - start, t.End - start); }
                    _cache.TryAdd(s.Substring(start, len), toks);
                }
            }
            start = i;
        }
    }

    [ThreadStatic] private static List<ModelToken>? t_merged;

    /// <summary>BPE over s[from..to): user-defined pieces whole, other code points as symbols, then merges.</summary>
    private void EncodeBpeWord(string s, int from, int to, List<ModelToken> output)
    {
        var ws = BpeMerger.Begin(to - from + 2);
        for (int i = from; i < to;)
        {
            int n = MatchUserDefined(s, i);
            int id;
            if (n > 0) id = _pieces[s.Substring(i, n)];
            else
            {
                UnicodeClass.CodePointAt(s, i, out n);
                id = n == 1 ? _charIds[s[i]] : _pieces.GetValueOrDefault(s.Substring(i, n), -1);
            }
            ws.Add(id, i, i + n);
            i += n;
        }
        var merged = t_merged ??= new List<ModelToken>();
        merged.Clear();
        _bpe!.MergeAll(ws, merged);
        foreach (var t in merged)
        {
            if (t.Id >= 0) { output.Add(t); continue; }
            if (_p.ByteFallback && TryBytes(s.AsSpan(t.Start, t.End - t.Start), t, output)) continue;
            if (output.Count > 0 && output[^1].Id == _p.UnkId && output[^1].End == t.Start)
                output[^1] = output[^1] with { End = t.End };           // SentencePiece fuses consecutive unknowns
            else output.Add(new ModelToken(_p.UnkId, t.Start, t.End));
        }
    }

    private int MatchUserDefined(string s, int i)
    {
        foreach (var u in _userDefined)
            if (string.CompareOrdinal(s, i, u, 0, u.Length) == 0) return u.Length;
        return 0;
    }

    private bool TryBytes(ReadOnlySpan<char> ch, ModelToken t, List<ModelToken> output)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(ch.ToArray());
        foreach (var b in bytes) if (_byteIds[b] < 0) return false;
        foreach (var b in bytes) output.Add(new ModelToken(_byteIds[b], t.Start, t.End));
        return true;
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var sb = new StringBuilder();
        int runStart = 0;
        // Without skipping, control pieces are written out and each run between them is decoded on its own.
        for (int k = 0; k <= ids.Length; k++)
        {
            if (k < ids.Length && !IsControl(ids[k])) continue;
            DecodeRun(ids[runStart..k], sb);
            if (k < ids.Length && !skipSpecialTokens) sb.Append(_p.Pieces[ids[k]].Piece);
            runStart = k + 1;
        }
        return sb.ToString();
    }

    private bool IsControl(int id) => (uint)id < (uint)_p.Pieces.Count && _p.Pieces[id].Type == PieceType.Control;

    private void DecodeRun(ReadOnlySpan<int> ids, StringBuilder sb)
    {
        bool atStart = _p.AddDummyPrefix && !_p.TreatWhitespaceAsSuffix;
        var bytes = new List<byte>();
        void Emit(string text)
        {
            if (atStart && text.Length > 0)
            {
                if (text[0] == '\u2581') text = text[1..];
                atStart = false;
            }
            sb.Append(text.Replace('\u2581', ' '));
        }
        void FlushBytes()
        {
            if (bytes.Count == 0) return;
            var arr = bytes.ToArray();
            bytes.Clear();
            var text = Utf8Lossy.IsValid(arr) ? System.Text.Encoding.UTF8.GetString(arr) : PerByteReplacement(arr);
            Emit(text);
        }
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)_p.Pieces.Count) continue;
            var e = _p.Pieces[id];
            if (e.Type == PieceType.Byte) { bytes.Add((byte)ByteFallbackDecoder.ParseByteToken(e.Piece)); continue; }
            FlushBytes();
            if (e.Type == PieceType.Control) continue;
            if (e.Type == PieceType.Unknown) { Emit(_p.UnkSurface); continue; }
            Emit(e.Piece);
        }
        FlushBytes();
    }

    /// <summary>Valid UTF-8 stretches decode normally; each byte of an invalid sequence becomes U+FFFD.</summary>
    private static string PerByteReplacement(byte[] arr)
    {
        var sb = new StringBuilder();
        int i = 0;
        while (i < arr.Length)
        {
            int len = arr[i] < 0x80 ? 1 : arr[i] >= 0xF0 ? 4 : arr[i] >= 0xE0 ? 3 : arr[i] >= 0xC0 ? 2 : 0;
            if (len > 0 && i + len <= arr.Length && Utf8Lossy.IsValid(arr[i..(i + len)]))
            {
                sb.Append(System.Text.Encoding.UTF8.GetString(arr, i, len)); i += len;
            }
            else { sb.Append('\uFFFD'); i++; }
        }
        return sb.ToString();
    }
}
