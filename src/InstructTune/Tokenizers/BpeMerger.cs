namespace InstructTune.Tokenizers;

/// <summary>One model token: id and [Start, End) in units of the word the model was given.</summary>
public readonly record struct ModelToken(int Id, int Start, int End);

/// <summary>
/// The BPE merge loop shared by tokenizer.json BPE and SentencePiece BPE. Symbols sit in a doubly linked list; a
/// binary min-heap holds candidate pairs keyed by (rank, position of the left symbol), so the lowest-rank pair
/// merges first and, between equal ranks, the leftmost one (HF Word::merge_all and SentencePiece's agenda agree on
/// this order). Stale heap entries are skipped by re-checking the pair's rank when popped. O(n log n) per word, so
/// a 100 kB SentencePiece line with no pre-tokenizer stays fast.
/// </summary>
internal sealed class BpeMerger
{
    // Pair (left id, right id) → (rank << 32) | merged id.
    private readonly Dictionary<long, long> _merges;

    public BpeMerger(Dictionary<long, long> merges) => _merges = merges;

    public int Count => _merges.Count;

    public static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    public bool TryGetMerge(int left, int right, out int rank, out int mergedId)
    {
        if (_merges.TryGetValue(Key(left, right), out long v)) { rank = (int)(v >> 32); mergedId = (int)v; return true; }
        rank = 0; mergedId = 0; return false;
    }

    [ThreadStatic] private static Workspace? t_ws;

    /// <summary>Per-thread symbol list and heap, grown on demand and reused across words.</summary>
    internal sealed class Workspace
    {
        public int[] Id = new int[64], Start = new int[64], End = new int[64], Prev = new int[64], Next = new int[64];
        public long[] Heap = new long[64];
        public int Count;

        public void Reset(int capacity)
        {
            if (Id.Length < capacity)
            {
                int n = Math.Max(capacity, Id.Length * 2);
                Id = new int[n]; Start = new int[n]; End = new int[n]; Prev = new int[n]; Next = new int[n];
                Heap = new long[n];
            }
            Count = 0;
        }

        public void Add(int id, int start, int end)
        {
            if (Count == Id.Length) Grow();
            Id[Count] = id; Start[Count] = start; End[Count] = end; Count++;
        }

        private void Grow()
        {
            int n = Id.Length * 2;
            Array.Resize(ref Id, n); Array.Resize(ref Start, n); Array.Resize(ref End, n);
            Array.Resize(ref Prev, n); Array.Resize(ref Next, n); Array.Resize(ref Heap, n);
        }
    }

    public static Workspace Begin(int capacity)
    {
        var ws = t_ws ??= new Workspace();
        ws.Reset(capacity);
        return ws;
    }

    /// <summary>Merges the workspace's symbols in place and appends the result (in order) to output.</summary>
    public void MergeAll(Workspace ws, List<ModelToken> output)
    {
        int n = ws.Count;
        var id = ws.Id; var start = ws.Start; var end = ws.End; var prev = ws.Prev; var next = ws.Next;
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
        if (n > 1)
        {
            if (ws.Heap.Length < n) ws.Heap = new long[Math.Max(n, ws.Heap.Length * 2)];
            var heap = ws.Heap;
            int size = 0;
            for (int i = 0; i + 1 < n; i++)
                if (TryGetMerge(id[i], id[i + 1], out int r, out _)) Push(ref heap, ref size, ((long)r << 32) | (uint)i);
            while (size > 0)
            {
                long top = Pop(heap, ref size);
                int pos = (int)top, rank = (int)(top >> 32);
                if (id[pos] < -1) continue;                      // merged away
                int right = next[pos];
                if (right < 0) continue;
                if (!TryGetMerge(id[pos], id[right], out int r, out int merged) || r != rank) continue; // stale
                id[pos] = merged;
                end[pos] = end[right];
                int after = next[right];
                next[pos] = after;
                if (after >= 0) prev[after] = pos;
                id[right] = -2;                                  // dead
                int before = prev[pos];
                if (before >= 0 && TryGetMerge(id[before], merged, out int rb, out _))
                    Push(ref heap, ref size, ((long)rb << 32) | (uint)before);
                if (after >= 0 && TryGetMerge(merged, id[after], out int ra, out _))
                    Push(ref heap, ref size, ((long)ra << 32) | (uint)pos);
            }
            ws.Heap = heap;
        }
        for (int i = 0; i >= 0 && n > 0; i = next[i]) output.Add(new ModelToken(id[i], start[i], end[i]));
    }

    private static void Push(ref long[] heap, ref int size, long v)
    {
        if (size == heap.Length) Array.Resize(ref heap, heap.Length * 2);
        int i = size++;
        while (i > 0)
        {
            int p = (i - 1) >> 1;
            if (heap[p] <= v) break;
            heap[i] = heap[p]; i = p;
        }
        heap[i] = v;
    }

    private static long Pop(long[] heap, ref int size)
    {
        long top = heap[0];
        long v = heap[--size];
        int i = 0;
        while (true)
        {
            int l = 2 * i + 1;
            if (l >= size) break;
            int c = l + 1 < size && heap[l + 1] < heap[l] ? l + 1 : l;
            if (heap[c] >= v) break;
            heap[i] = heap[c]; i = c;
        }
        if (size > 0) heap[i] = v;
        return top;
    }
}
