namespace InstructTune.Tokenizers;

/// <summary>
/// Unigram language-model segmentation (HF Unigram and SentencePiece UNIGRAM): Viterbi over all vocabulary pieces
/// that start at each position, maximising the sum of piece log-probabilities. A character no piece covers becomes
/// unk with score min_score - 10; consecutive unks fuse; with byte_fallback an unk becomes its UTF-8 byte pieces.
/// Ties keep the first candidate found (shorter piece), as both references do. SentencePiece accumulates in float,
/// HF in double: <c>floatScores</c> picks which.
/// </summary>
public sealed class UnigramModel : ITokenModel
{
    private readonly Dictionary<string, int> _vocab = new(StringComparer.Ordinal);
    private readonly string[] _pieces;
    private readonly double[] _scores;
    private readonly int? _unkId;
    private readonly bool _byteFallback, _floatScores;
    private readonly double _unkScore;
    private readonly Dictionary<char, (string Piece, int Id)[]> _byFirst; // candidates by first char
    private readonly int[] _byteIds = new int[256];

    public UnigramModel(IReadOnlyList<(string Piece, double Score)> pieces, int? unkId, bool byteFallback,
                        bool floatScores = false, Func<int, bool>? inLattice = null)
    {
        _pieces = new string[pieces.Count];
        _scores = new double[pieces.Count];
        double min = double.MaxValue;
        for (int i = 0; i < pieces.Count; i++)
        {
            _pieces[i] = pieces[i].Piece; _scores[i] = pieces[i].Score;
            _vocab.TryAdd(pieces[i].Piece, i);
            min = Math.Min(min, pieces[i].Score);
        }
        _unkId = unkId; _byteFallback = byteFallback; _floatScores = floatScores;
        _unkScore = floatScores ? (float)((float)min - 10f) : min - 10.0;
        _byFirst = Enumerable.Range(0, pieces.Count)
            .Where(i => _pieces[i].Length > 0 && (inLattice?.Invoke(i) ?? i != unkId))
            .GroupBy(i => _pieces[i][0])
            .ToDictionary(g => g.Key, g => g.OrderBy(i => _pieces[i].Length).Select(i => (_pieces[i], i)).ToArray());
        for (int b = 0; b < 256; b++) _byteIds[b] = _vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
    }

    public int VocabSize => _pieces.Length;
    public int? TokenToId(string token) => _vocab.TryGetValue(token, out int id) ? id : null;
    public string? IdToToken(int id) => (uint)id < (uint)_pieces.Length ? _pieces[id] : null;
    internal double Score(int id) => _scores[id];

    public void Tokenize(ReadOnlySpan<char> word, List<ModelToken> output)
    {
        int n = word.Length;
        if (n == 0) return;
        var best = new double[n + 1];
        var from = new int[n + 1];
        var ids = new int[n + 1];
        Array.Fill(from, -1);
        best[0] = 0;
        for (int pos = 0; pos < n; pos++)
        {
            if (pos > 0 && from[pos] < 0) continue; // unreachable (inside a surrogate pair)
            double here = best[pos];
            int charLen = char.IsHighSurrogate(word[pos]) && pos + 1 < n && char.IsLowSurrogate(word[pos + 1]) ? 2 : 1;
            bool single = false;
            if (_byFirst.TryGetValue(word[pos], out var cands))
            {
                var rest = word[pos..];
                foreach (var (piece, id) in cands)
                {
                    if (piece.Length > rest.Length) break;
                    if (!rest.StartsWith(piece, StringComparison.Ordinal)) continue;
                    int end = pos + piece.Length;
                    if (end < n && char.IsLowSurrogate(word[end]) && char.IsHighSurrogate(word[end - 1])) continue;
                    double cand = _floatScores ? (float)((float)here + (float)_scores[id]) : here + _scores[id];
                    if (from[end] < 0 || cand > best[end]) { best[end] = cand; from[end] = pos; ids[end] = id; }
                    if (piece.Length == charLen) single = true;
                }
            }
            if (!single)
            {
                int end = pos + charLen;
                double cand = _floatScores ? (float)((float)here + (float)_unkScore) : here + _unkScore;
                if (from[end] < 0 || cand > best[end]) { best[end] = cand; from[end] = pos; ids[end] = _unkId ?? -1; }
            }
        }
        var path = new List<ModelToken>();
        for (int end = n; end > 0; end = from[end]) path.Add(new ModelToken(ids[end], from[end], end));
        path.Reverse();
        int unk = _unkId ?? -1;
        foreach (var t in path)
        {
            if (t.Id == unk && _byteFallback && TryBytes(word[t.Start..t.End], t.Start, t.End, output)) continue;
            if (t.Id == unk && output.Count > 0 && output[^1].Id == unk && output[^1].End == t.Start)
            {
                output[^1] = output[^1] with { End = t.End };
                continue;
            }
            output.Add(t);
        }
    }

    private bool TryBytes(ReadOnlySpan<char> s, int start, int end, List<ModelToken> output)
    {
        Span<byte> b = stackalloc byte[8];
        int nb = System.Text.Encoding.UTF8.GetBytes(s, b);
        for (int k = 0; k < nb; k++) if (_byteIds[b[k]] < 0) return false;
        for (int k = 0; k < nb; k++) output.Add(new ModelToken(_byteIds[b[k]], start, end));
        return true;
    }
}
