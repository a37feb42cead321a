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
        _trie = new PieceTrie(_pieces, _scores, i => _pieces[i].Length > 0 && (inLattice?.Invoke(i) ?? i != unkId));
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
        var ws = t_workspace ??= new Workspace();
        ws.Ensure(n + 1);
        if (_floatScores) Viterbi(word, _trie.ScoresF, (float)_unkScore, ws.BestF, ws.From, ws.Ids);
        else Viterbi(word, _trie.ScoresD, _unkScore, ws.BestD, ws.From, ws.Ids);
        // Back-track the best path into a reused buffer (end → start), then emit it start → end.
        var from = ws.From; var ids = ws.Ids; var path = ws.Path;
        int count = 0;
        for (int end = n; end > 0; end = from[end]) path[count++] = end;
        int unk = _unkId ?? -1;
        for (int k = count - 1; k >= 0; k--)
        {
            int end = path[k], start = from[end], id = ids[end];
            if (id == unk && _byteFallback && TryBytes(word[start..end], start, end, output)) continue;
            if (id == unk && output.Count > 0 && output[^1].Id == unk && output[^1].End == start)
            {
                output[^1] = output[^1] with { End = end };
                continue;
            }
            output.Add(new ModelToken(id, start, end));
        }
    }

    /// <summary>
    /// The Viterbi pass over word: best[end] = max over pieces word[pos..end) of best[pos] + score, in T's arithmetic
    /// (float for SentencePiece, double for HF), with the first candidate kept on ties; from[end] and ids[end] record
    /// the winning piece. T is a value type, so the JIT compiles one loop per arithmetic with no conversions in it.
    /// </summary>
    private void Viterbi<T>(ReadOnlySpan<char> word, T[] scores, T unkScore, T[] best, int[] from, int[] ids)
        where T : struct, System.Numerics.IFloatingPointIeee754<T>
    {
        int n = word.Length;
        Array.Fill(from, -1, 0, n + 1);
        best[0] = T.Zero;
        var trie = _trie;
        int unk = _unkId ?? -1;
        for (int pos = 0; pos < n; pos++)
        {
            if (pos > 0 && from[pos] < 0) continue; // unreachable (inside a surrogate pair)
            T here = best[pos];
            int charLen = char.IsHighSurrogate(word[pos]) && pos + 1 < n && char.IsLowSurrogate(word[pos + 1]) ? 2 : 1;
            bool single = false;
            // Common-prefix search: walk the trie along word[pos..]; every terminal node is a piece starting here,
            // reached shortest first (equal pieces in vocabulary order), the order the ties rule depends on.
            int node = PieceTrie.Root;
            for (int end = pos + 1; end <= n; end++)
            {
                node = trie.Child(node, word[end - 1]);
                if (node < 0) break;
                trie.Terminals(node, out int first, out int count);
                if (count == 0) continue;
                if (end < n && char.IsLowSurrogate(word[end]) && char.IsHighSurrogate(word[end - 1])) continue;
                for (int t = first; t < first + count; t++)
                {
                    T cand = here + scores[t];
                    if (from[end] < 0 || cand > best[end]) { best[end] = cand; from[end] = pos; ids[end] = trie.IdAt(t); }
                }
                if (end - pos == charLen) single = true;
            }
            if (!single)
            {
                int end = pos + charLen;
                T cand = here + unkScore;
                if (from[end] < 0 || cand > best[end]) { best[end] = cand; from[end] = pos; ids[end] = unk; }
            }
        }
    }

    /// <summary>Per-thread lattice buffers, grown on demand and reused across calls (no allocation per line).</summary>
    private sealed class Workspace
    {
        public float[] BestF = [];
        public double[] BestD = [];
        public int[] From = [], Ids = [], Path = [];

        public void Ensure(int size)
        {
            if (From.Length >= size) return;
            size = Math.Max(size, 2 * From.Length);
            BestF = new float[size]; BestD = new double[size]; From = new int[size]; Ids = new int[size]; Path = new int[size];
        }
    }

    [ThreadStatic] private static Workspace? t_workspace;

    private bool TryBytes(ReadOnlySpan<char> s, int start, int end, List<ModelToken> output)
    {
        Span<byte> b = stackalloc byte[8];
        int nb = System.Text.Encoding.UTF8.GetBytes(s, b);
        for (int k = 0; k < nb; k++) if (_byteIds[b[k]] < 0) return false;
        for (int k = 0; k < nb; k++) output.Add(new ModelToken(_byteIds[b[k]], start, end));
        return true;
    }

    /// <summary>
    /// Character trie over the lattice pieces, stored as a double array (as sentencepiece's darts-clone trie): the
    /// child of node v along character c is slot Base[v] + code(c) when that slot's Check is v, so each step of the
    /// common-prefix search is two array reads instead of a search among v's children. code() numbers the characters
    /// that occur in the vocabulary 1..K (most frequent first, so the busy nodes pack densely); any other character has
    /// no child anywhere. Each node's pieces (one, or several for duplicate strings, in vocabulary order) are a slice of
    /// <c>_ids</c>, with their scores beside them in float and in double.
    /// </summary>
    private sealed class PieceTrie
    {
        public const int Root = 0;
        private readonly int[] _code = new int[char.MaxValue + 1];
        private readonly Cell[] _cells;
        private readonly int[] _ids;
        public readonly float[] ScoresF;
        public readonly double[] ScoresD;

        private struct Cell { public int Check, Base, IdStart, IdCount; }

        public PieceTrie(string[] pieces, double[] scores, Func<int, bool> include)
        {
            // Build a pointer trie with dictionaries first, then lay it into the double array breadth first.
            var kids = new List<SortedDictionary<int, int>> { new() };
            var terms = new List<List<int>?> { null };
            var freq = new long[char.MaxValue + 1];
            for (int i = 0; i < pieces.Length; i++)
                if (include(i)) foreach (char c in pieces[i]) freq[c]++;
            var byFreq = Enumerable.Range(0, freq.Length).Where(c => freq[c] > 0).OrderByDescending(c => freq[c]).ThenBy(c => c).ToArray();
            for (int k = 0; k < byFreq.Length; k++) _code[byFreq[k]] = k + 1;
            for (int i = 0; i < pieces.Length; i++)
            {
                if (!include(i)) continue;
                int node = 0;
                foreach (char c in pieces[i])
                {
                    int code = _code[c];
                    if (!kids[node].TryGetValue(code, out int child))
                    {
                        child = kids.Count;
                        kids[node][code] = child;
                        kids.Add(new());
                        terms.Add(null);
                    }
                    node = child;
                }
                (terms[node] ??= new()).Add(i);
            }

            // Slots are placed with a linked list of the free ones (darts' approach): a node's base is the first
            // b = f - code(first child) over free slots f at which every child's slot is free, so the search skips
            // the packed region instead of rescanning it (a plain scan took minutes on a 32 000-piece vocabulary).
            var layout = new Layout();
            var slotOf = new int[kids.Count];
            var ids = new List<int>();
            var queue = new Queue<int>();
            layout.Take(0);
            queue.Enqueue(0);
            while (queue.Count > 0)
            {
                int v = queue.Dequeue();
                int slot = slotOf[v];
                if (terms[v] is { } t) { layout.Cells[slot].IdStart = ids.Count; layout.Cells[slot].IdCount = t.Count; ids.AddRange(t); }
                if (kids[v].Count == 0) continue;
                int minCode = kids[v].Keys.First();
                int b = layout.FindBase(kids[v].Keys, minCode);
                layout.Cells[slot].Base = b;
                foreach (var (code, child) in kids[v])
                {
                    layout.Take(b + code);
                    layout.Cells[b + code].Check = slot;
                    slotOf[child] = b + code;
                    queue.Enqueue(child);
                }
            }
            // Room so that Base + any code stays inside the array (no bounds test in Child beyond the array's own).
            int maxBase = 0;
            for (int k = 0; k < layout.Capacity; k++) maxBase = Math.Max(maxBase, layout.Cells[k].Base);
            int size = Math.Max(layout.Used, maxBase + byFreq.Length + 1);
            layout.Grow(size);
            _cells = layout.Cells[..size];
            _ids = ids.ToArray();
            ScoresF = new float[_ids.Length]; ScoresD = new double[_ids.Length];
            for (int k = 0; k < _ids.Length; k++) { ScoresD[k] = scores[_ids[k]]; ScoresF[k] = (float)scores[_ids[k]]; }
        }

        /// <summary>The double array under construction: cells, which slots are taken, and the free slots as a
        /// doubly linked list in slot order.</summary>
        private sealed class Layout
        {
            public Cell[] Cells = [];
            private bool[] _used = [];
            private int[] _next = [], _prev = [];
            private int _head = -1, _tail = -1;
            public int Capacity => Cells.Length;
            public int Used { get; private set; }   // one past the highest taken slot

            public void Grow(int need)
            {
                int old = Cells.Length;
                if (need <= old) return;
                int cap = Math.Max(need, Math.Max(1024, 2 * old));
                Array.Resize(ref Cells, cap); Array.Resize(ref _used, cap); Array.Resize(ref _next, cap); Array.Resize(ref _prev, cap);
                for (int i = old; i < cap; i++)
                {
                    Cells[i].Check = -1;
                    _prev[i] = _tail; _next[i] = -1;
                    if (_tail >= 0) _next[_tail] = i; else _head = i;
                    _tail = i;
                }
            }

            public void Take(int s)
            {
                Grow(s + 1);
                _used[s] = true;
                if (_prev[s] >= 0) _next[_prev[s]] = _next[s]; else _head = _next[s];
                if (_next[s] >= 0) _prev[_next[s]] = _prev[s]; else _tail = _prev[s];
                Used = Math.Max(Used, s + 1);
            }

            public int FindBase(IEnumerable<int> codes, int minCode)
            {
                for (int f = _head; ; f = _next[f])
                {
                    if (f < 0) { f = Cells.Length; Grow(f + 1); }
                    int b = f - minCode;
                    if (b < 1) continue;
                    bool fits = true;
                    foreach (int code in codes)
                        if (b + code < _used.Length && _used[b + code]) { fits = false; break; }
                    if (fits) return b;
                }
            }
        }

        /// <summary>The child of <paramref name="node"/> along <paramref name="c"/>, or -1.</summary>
        public int Child(int node, char c)
        {
            int code = _code[c];
            if (code == 0) return -1;
            int s = _cells[node].Base + code;
            return _cells[s].Check == node ? s : -1;
        }

        /// <summary>The pieces that end at <paramref name="node"/>: entries first..first+count of IdAt/Scores.</summary>
        public void Terminals(int node, out int first, out int count)
        {
            ref readonly var cell = ref _cells[node];
            first = cell.IdStart; count = cell.IdCount;
        }

        public int IdAt(int entry) => _ids[entry];
    }
}
