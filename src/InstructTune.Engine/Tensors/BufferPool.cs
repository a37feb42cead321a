// Reusable float buffers keyed by exact length. A training step allocates the same shapes every step, so
// after the first step every activation and gradient buffer is a reuse: no per-step garbage for big arrays.
// Buffers are pinned (POH) so their addresses never move, which lets AlignedOffset place element 0 of a tensor on a
// 64-byte boundary (cache line, AVX loads never split): each buffer has 15 spare floats for that.
//
// The pool is bounded. Idle buffers are kept only while
//   idle + in use <= peak in use   (the most floats ever rented at once: one training step's working set)
// and only for MaxIdleMilliseconds after their last return; past either bound the least recently returned buffer is
// dropped for the GC. A run whose shapes repeat (fixed or packed batches) never drops anything, while shapes that keep
// changing (unpacked batches of varying length, eval between steps, one process running many different models) can
// no longer pile up one idle set per shape: before this bound a test process held 9.5 GB of idle pinned buffers.

namespace InstructTune.Engine.Tensors;

public static class BufferPool
{
    /// <summary>An idle buffer: listed on the shelf of its length and in the pool-wide return order.</summary>
    private sealed class Entry
    {
        public float[] Buffer = [];
        public long ReturnedAt;                // Environment.TickCount64 at Return
        public readonly LinkedListNode<Entry> OnShelf, InOrder;
        public Entry() { OnShelf = new(this); InOrder = new(this); }
    }

    /// <summary>How long an idle buffer is kept: longer than any pause between two steps' use of one shape (optimizer
    /// step, checkpoint), short enough that shapes a process stopped using are given back.</summary>
    public const int MaxIdleMilliseconds = 15_000;

    private static readonly object Gate = new();
    private static readonly Dictionary<int, LinkedList<Entry>> Shelves = new();   // key: full length (requested + Slack)
    private static readonly LinkedList<Entry> Order = new();                      // oldest return first
    private static readonly Stack<Entry> Spare = new();                           // recycled entries: no garbage per Return
    private static long idleFloats, inUseFloats, peakInUseFloats, lastSweep;

    /// <summary>Milliseconds clock for the idle bound (tests move it forward instead of waiting).</summary>
    internal static Func<long> Clock = () => Environment.TickCount64;

    /// <summary>Floats currently held idle by the pool.</summary>
    public static long PooledFloats { get { lock (Gate) return idleFloats; } }

    /// <summary>Floats rented and not yet returned.</summary>
    public static long InUseFloats { get { lock (Gate) return inUseFloats; } }

    /// <summary>The most floats rented at once since start (or the last Trim): the bound on idle + in use.</summary>
    public static long PeakInUseFloats { get { lock (Gate) return peakInUseFloats; } }

    /// <summary>A pinned buffer of at least length + Slack floats; with zero, all of it is cleared.</summary>
    public static float[] Rent(int length, bool zero)
    {
        if (length == 0) return [];
        int full = length + Slack;
        lock (Gate)
        {
            inUseFloats += full;
            if (inUseFloats > peakInUseFloats) peakInUseFloats = inUseFloats;
            if (Shelves.TryGetValue(full, out var shelf) && shelf.Last is { } node)
            {
                var arr = Take(node.Value);
                if (zero) Array.Clear(arr);
                return arr;
            }
            EvictOverBound(Clock());
        }
        return GC.AllocateArray<float>(full, pinned: true); // fresh arrays are already zero
    }

    /// <summary>Spare floats at the end of every pooled buffer, room for the alignment offset.</summary>
    public const int Slack = 15;

    /// <summary>Index of the first 64-byte-aligned element of a pinned pooled buffer.</summary>
    public static unsafe int AlignedOffset(float[] pinned)
    {
        if (pinned.Length == 0) return 0;
        fixed (float* p = pinned) return (int)((64 - ((nuint)p & 63)) & 63) / sizeof(float);
    }

    public static void Return(float[] arr)
    {
        if (arr.Length == 0) return;
        long now = Clock();
        lock (Gate)
        {
            inUseFloats = Math.Max(0, inUseFloats - arr.Length);
            var e = Spare.Count > 0 ? Spare.Pop() : new Entry();
            e.Buffer = arr;
            e.ReturnedAt = now;
            if (!Shelves.TryGetValue(arr.Length, out var shelf)) Shelves[arr.Length] = shelf = new LinkedList<Entry>();
            shelf.AddLast(e.OnShelf);    // Rent takes the most recent (warm in cache)
            Order.AddLast(e.InOrder);
            idleFloats += arr.Length;
            EvictOverBound(now);
        }
    }

    /// <summary>Drops every idle buffer and forgets the peak (e.g. after changing batch shapes for good).</summary>
    public static void Trim()
    {
        lock (Gate)
        {
            while (Order.First is { } node) Take(node.Value);
            peakInUseFloats = inUseFloats;
        }
    }

    /// <summary>Removes an idle entry from both lists and hands back its buffer (caller holds Gate).</summary>
    private static float[] Take(Entry e)
    {
        var arr = e.Buffer;
        var shelf = e.OnShelf.List!;
        shelf.Remove(e.OnShelf);
        if (shelf.Count == 0) Shelves.Remove(arr.Length);
        Order.Remove(e.InOrder);
        idleFloats -= arr.Length;
        e.Buffer = [];
        Spare.Push(e);
        return arr;
    }

    /// <summary>Drops the oldest idle buffers while the pool is over its size bound, and (at most once a second)
    /// those idle longer than MaxIdleMilliseconds (caller holds Gate).</summary>
    private static void EvictOverBound(long now)
    {
        while (idleFloats > 0 && idleFloats + inUseFloats > peakInUseFloats && Order.First is { } oldest) Take(oldest.Value);
        if (now >= lastSweep && now - lastSweep < 1000) return;
        lastSweep = now;
        while (Order.First is { } first && now - first.Value.ReturnedAt > MaxIdleMilliseconds) Take(first.Value);
    }
}
