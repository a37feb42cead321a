namespace InstructTune.Tokenizers;

/// <summary>
/// Unigram language-model segmentation (HF Unigram and SentencePiece UNIGRAM): Viterbi over all vocabulary pieces
/// that start at each position, maximising the sum of piece log-probabilities. The pieces that start at a position
/// come from a common-prefix search in a character trie over the vocabulary (as sentencepiece's double array does),
/// shortest first. A character no piece covers becomes
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
    private readonly PieceTrie _trie; // lattice pieces, for common-prefix search
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
        _trie = new PieceTrie(_pieces, i => _pieces[i].Length > 0 && (inLattice?.Invoke(i) ?? i != unkId));
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
            // Common-prefix search: walk the trie along word[pos..]; every terminal node is a piece starting here,
            // reached shortest first (equal pieces in vocabulary order), the order the ties rule depends on.
            int node = 0;
            for (int end = pos + 1; end <= n; end++)
            {
                node = _trie.Child(node, word[end - 1]);
                if (node < 0) break;
                var terminals = _trie.Ids(node);
                if (terminals.IsEmpty) continue;
                if (end < n && char.IsLowSurrogate(word[end]) && char.IsHighSurrogate(word[end - 1])) continue;
                foreach (int id in terminals)
                {
                    double cand = _floatScores ? (float)((float)here + (float)_scores[id]) : here + _scores[id];
                    if (from[end] < 0 || cand > best[end]) { best[end] = cand; from[end] = pos; ids[end] = id; }
                }
                if (end - pos == charLen) single = true;
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

    /// <summary>
    /// Character trie over the lattice pieces. Children of a node are a sorted slice of <c>_chars</c>/<c>_next</c>
    /// (binary search); the root's children are a direct table over all UTF-16 code units. Each node's pieces (one,
    /// or several for duplicate strings, in vocabulary order) are a slice of <c>_ids</c>.
    /// </summary>
    private sealed class PieceTrie
    {
        private readonly int[] _root = new int[char.MaxValue + 1];
        private readonly int[] _childStart, _childCount, _idStart, _idCount;
        private readonly char[] _chars;
        private readonly int[] _next, _ids;

        public PieceTrie(string[] pieces, Func<int, bool> include)
        {
            // Build with dictionaries, then flatten into arrays for the search.
            var kids = new List<SortedDictionary<char, int>> { new() };
            var terms = new List<List<int>?> { null };
            for (int i = 0; i < pieces.Length; i++)
            {
                if (!include(i)) continue;
                int node = 0;
                foreach (char c in pieces[i])
                {
                    if (!kids[node].TryGetValue(c, out int child))
                    {
                        child = kids.Count;
                        kids[node][c] = child;
                        kids.Add(new());
                        terms.Add(null);
                    }
                    node = child;
                }
                (terms[node] ??= new()).Add(i);
            }
            int count = kids.Count;
            _childStart = new int[count]; _childCount = new int[count]; _idStart = new int[count]; _idCount = new int[count];
            var chars = new List<char>(count); var next = new List<int>(count); var ids = new List<int>();
            for (int v = 0; v < count; v++)
            {
                _childStart[v] = chars.Count; _childCount[v] = kids[v].Count;
                foreach (var (c, child) in kids[v]) { chars.Add(c); next.Add(child); }
                _idStart[v] = ids.Count; _idCount[v] = terms[v]?.Count ?? 0;
                if (terms[v] != null) ids.AddRange(terms[v]!);
            }
            _chars = chars.ToArray(); _next = next.ToArray(); _ids = ids.ToArray();
            Array.Fill(_root, -1);
            foreach (var (c, child) in kids[0]) _root[c] = child;
        }

        /// <summary>The child of <paramref name="node"/> along <paramref name="c"/>, or -1.</summary>
        public int Child(int node, char c)
        {
            if (node == 0) return _root[c];
            int lo = _childStart[node], hi = lo + _childCount[node] - 1;
            while (lo <= hi)
            {
                int mid = (lo + hi) >>> 1;
                char m = _chars[mid];
                if (m == c) return _next[mid];
                if (m < c) lo = mid + 1; else hi = mid - 1;
            }
            return -1;
        }

        /// <summary>The pieces that end at <paramref name="node"/>, in vocabulary order.</summary>
        public ReadOnlySpan<int> Ids(int node) => _ids.AsSpan(_idStart[node], _idCount[node]);
    }
}
