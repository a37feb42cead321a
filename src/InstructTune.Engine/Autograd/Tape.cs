// Reverse-mode autograd: a tape of backward closures recorded by ops, run in reverse by Backward.
//
//   using (var tape = Tape.Record())          // also the arena: buffers come from BufferPool
//   {
//       var loss = model.Forward(batch).Loss;   // ops record (output, backward) pairs
//       tape.Backward(loss);                   // parameter gradients accumulate (+=) across micro-batches
//       float value = loss.Item();             // read what you need before the tape is disposed
//   }                                          // activations and their gradients return to the pool
//
// The current tape is per thread; tapes nest (activation checkpointing opens one inside backward).
// Tape.Record(recordGrad: false) is a pure arena (inference): ops allocate from the pool and record nothing.
// Without any tape, ops allocate on the GC heap and record nothing.
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Autograd;

public sealed class Tape : IDisposable
{
    [ThreadStatic] private static Tape? current;
    [ThreadStatic] private static int noGradDepth;

    private readonly Tape? parent;
    private readonly bool recordGrad;
    private readonly List<(Tensor Output, Action Backward)> nodes = [];
    private readonly List<Tensor> owned = [];   // tensors whose storage this tape rented (OwnsStorage) or views onto it
    private bool disposed;

    private Tape(Tape? parent, bool recordGrad) { this.parent = parent; this.recordGrad = recordGrad; }

    public static Tape Record(bool recordGrad = true) => current = new Tape(current, recordGrad);

    public static Tape? Current => current;

    /// <summary>True when ops should record backward closures on this thread.</summary>
    public static bool IsRecording => current is { recordGrad: true } && noGradDepth == 0;

    /// <summary>Inside the returned scope ops record nothing (buffers still come from the open tape).</summary>
    public static NoGradScope NoGrad() { noGradDepth++; return new NoGradScope(); }

    public readonly struct NoGradScope : IDisposable
    {
        public void Dispose() => noGradDepth--;
    }

    /// <summary>Re-enables recording inside a no-grad region (activation checkpointing recomputes under backward).</summary>
    public static EnableGradScope EnableGrad() { var saved = noGradDepth; noGradDepth = 0; return new EnableGradScope(saved); }

    public readonly struct EnableGradScope(int saved) : IDisposable
    {
        public void Dispose() => noGradDepth = saved;
    }

    /// <summary>True when an op with these inputs must record its backward.</summary>
    public static bool Needs(Tensor a) => IsRecording && a.RequiresGrad;
    public static bool Needs(Tensor a, Tensor b) => IsRecording && (a.RequiresGrad || b.RequiresGrad);
    public static bool Needs(Tensor a, Tensor? b, Tensor? c) =>
        IsRecording && (a.RequiresGrad || (b?.RequiresGrad ?? false) || (c?.RequiresGrad ?? false));

    /// <summary>Records a backward closure producing gradients of the inputs from output.Grad.</summary>
    public static void Add(Tensor output, Action backward)
    {
        output.RequiresGrad = true;
        current!.nodes.Add((output, backward));
    }

    /// <summary>A new contiguous tensor: pooled when a tape is open, else on the GC heap.</summary>
    public static Tensor NewTensor(int[] shape, bool zero) => NewTensorIn(current, shape, zero);

    /// <summary>A new contiguous tensor owned by tape <paramref name="t"/> (heap when null).</summary>
    internal static Tensor NewTensorIn(Tape? t, int[] shape, bool zero)
    {
        int n = Tensor.ShapeLength(shape);
        if (t == null || t.disposed) return new Tensor(new float[n], 0, (int[])shape.Clone());
        var arr = BufferPool.Rent(n, zero);
        var res = new Tensor(arr, n == 0 ? 0 : BufferPool.AlignedOffset(arr), (int[])shape.Clone());
        res.Owner = t;
        res.OwnsStorage = true;
        t.owned.Add(res);
        return res;
    }

    /// <summary>Registers a view so that it is invalidated together with the storage it looks at.</summary>
    internal static void TrackView(Tensor source, Tensor view)
    {
        view.Owner = source.Owner;
        source.Owner?.owned.Add(view);
    }

    /// <summary>Backward of a reshape view: when <paramref name="source"/> (an activation of the same tape) has no
    /// gradient yet, the view's complete gradient becomes the source's (same storage, the source's shape) instead of a
    /// zeroed buffer plus an add. For the logits, reshaped (B·T, V) → (B, T, V) → (B·T, V) between the LM head and the
    /// loss, that is two (B·T, vocab) buffers fewer at the backward peak. False (nothing changed) otherwise.</summary>
    internal static bool TryHandOverGrad(Tensor view, Tensor source)
    {
        if (source.Grad != null || source is Parameter || view.Grad is not { OwnsStorage: true } g || g.Owner is not { disposed: false } t
            || source.Owner != t || !g.IsContiguous || g.Length != source.Length) return false;
        var moved = new Tensor(g.Storage, g.Offset, (int[])source.Shape.Clone()) { Owner = t, OwnsStorage = true };
        t.owned.Add(moved);
        g.Release();          // the storage now belongs to moved (returned once, by whichever of Backward/Dispose frees it)
        view.Grad = null;
        source.Grad = moved;
        return true;
    }

    /// <summary>Runs the recorded closures in reverse, seeding d(root) = <paramref name="seed"/> (1 for a scalar loss).</summary>
    public void Backward(Tensor root, Tensor? seed = null)
    {
        if (disposed) throw new ObjectDisposedException(nameof(Tape));
        if (seed == null && root.Length != 1)
            throw new ArgumentException($"Backward: root of shape {Tensor.ShapeString(root.Shape)} is not a scalar; pass its gradient");
        var g = root.EnsureGrad();
        if (seed == null) g.Span.Fill(1f);
        else { Tensor.CheckSameShape("Backward", root, seed); seed.CopyTo(g.Span); }
        using (NoGrad())
        {
            for (int i = nodes.Count - 1; i >= 0; i--)
            {
                var (output, backward) = nodes[i];
                if (output.Grad == null) continue;
                backward();
                // output's gradient is complete before its producer runs and read by nobody after: give its
                // buffer back now, so later gradients reuse it (peak memory ≈ activations + a few gradients).
                if (output is not Parameter && output.Grad is { OwnsStorage: true } og && og.Owner == this)
                {
                    output.Grad = null;
                    var arr = og.Storage;
                    og.Release();
                    BufferPool.Return(arr);
                }
            }
        }
        nodes.Clear();
    }

    /// <summary>Returns every pooled buffer and invalidates the tensors that used them.</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        if (current != this) throw new InvalidOperationException("Tape disposed out of order (nested tapes must be disposed innermost first)");
        current = parent;
        foreach (var t in owned)
        {
            if (t.Released) continue;
            var arr = t.OwnsStorage ? t.Storage : null;
            t.Release();
            if (arr != null) BufferPool.Return(arr);
        }
        owned.Clear(); nodes.Clear();
    }
}
