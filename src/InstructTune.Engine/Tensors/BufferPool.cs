// Reusable float buffers keyed by exact length. A training step allocates the same shapes every step, so
// after the first step every activation and gradient buffer is a reuse: no per-step garbage for big arrays.
// Buffers are pinned (POH) so their addresses never move, which lets AlignedOffset place element 0 of a tensor on a
// 64-byte boundary (cache line, AVX loads never split): each buffer has 15 spare floats for that.
using System.Collections.Concurrent;

namespace InstructTune.Engine.Tensors;

public static class BufferPool
{
    private static readonly ConcurrentDictionary<int, ConcurrentBag<float[]>> Free = new();
    private static long pooledFloats;

    /// <summary>Floats currently held idle by the pool.</summary>
    public static long PooledFloats => Interlocked.Read(ref pooledFloats);

    /// <summary>A pinned buffer of at least length + Slack floats; with zero, all of it is cleared.</summary>
    public static float[] Rent(int length, bool zero)
    {
        if (length == 0) return [];
        if (Free.TryGetValue(length + Slack, out var bag) && bag.TryTake(out var arr))
        {
            Interlocked.Add(ref pooledFloats, -length);
            if (zero) Array.Clear(arr);
            return arr;
        }
        return GC.AllocateArray<float>(length + Slack, pinned: true); // fresh arrays are already zero
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
        Free.GetOrAdd(arr.Length, _ => new ConcurrentBag<float[]>()).Add(arr);
        Interlocked.Add(ref pooledFloats, arr.Length);  // keyed by the full length (requested + Slack)
    }

    /// <summary>Drops every idle buffer (e.g. after changing batch shapes for good).</summary>
    public static void Trim()
    {
        Free.Clear();
        Interlocked.Exchange(ref pooledFloats, 0);
    }
}
