// Reusable float buffers keyed by exact length. A training step allocates the same shapes every step, so
// after the first step every activation and gradient buffer is a reuse: no per-step garbage for big arrays.
// Buffers are pinned (POH) so their addresses never move under native code.
using System.Collections.Concurrent;

namespace InstructTune.Engine.Tensors;

public static class BufferPool
{
    private static readonly ConcurrentDictionary<int, ConcurrentBag<float[]>> Free = new();
    private static long pooledFloats;

    /// <summary>Floats currently held idle by the pool.</summary>
    public static long PooledFloats => Interlocked.Read(ref pooledFloats);

    public static float[] Rent(int length, bool zero)
    {
        if (length == 0) return [];
        if (Free.TryGetValue(length, out var bag) && bag.TryTake(out var arr))
        {
            Interlocked.Add(ref pooledFloats, -length);
            if (zero) Array.Clear(arr);
            return arr;
        }
        return GC.AllocateArray<float>(length, pinned: true); // fresh arrays are already zero
    }

    public static void Return(float[] arr)
    {
        if (arr.Length == 0) return;
        Free.GetOrAdd(arr.Length, _ => new ConcurrentBag<float[]>()).Add(arr);
        Interlocked.Add(ref pooledFloats, arr.Length);
    }

    /// <summary>Drops every idle buffer (e.g. after changing batch shapes for good).</summary>
    public static void Trim()
    {
        Free.Clear();
        Interlocked.Exchange(ref pooledFloats, 0);
    }
}
