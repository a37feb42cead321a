// Activation checkpointing: run a block without keeping its activations, and recompute it in backward.
// Forward runs the block on an inner arena tape that is disposed at once (its buffers go back to the pool for
// the next block), keeping only the block's output. Backward re-runs the block on a recording tape from the
// saved input, back-propagates the output gradient through it and adds the input gradient to the outer one.
// Contract: gradients flow only to x and to Parameters the block uses (other tensors are constants).
// When the block draws random numbers (dropout), pass its Rng: its state is replayed so both runs agree.
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Autograd;

public static class Checkpoint
{
    public static Tensor Run(Func<Tensor, Tensor> block, Tensor x, Rng? rng = null)
    {
        if (!Tape.IsRecording) return block(x);
        var outer = Tape.Current!;
        var rngState = rng?.State;
        Tensor y;
        using (var arena = Tape.Record(recordGrad: false))
        {
            var t = block(x);
            y = Tape.NewTensorIn(outer, t.Shape, zero: false);
            t.CopyTo(y.Span);
        }
        Tape.Add(y, () =>
        {
            var after = rng?.State;
            if (rng != null) rng.State = rngState!;
            using (Tape.EnableGrad())
            using (var inner = Tape.Record())
            {
                var xd = new Tensor(x.Storage, x.Offset, x.Shape, x.Strides) { RequiresGrad = x.RequiresGrad, Owner = inner };
                var yr = block(xd);
                if (yr.RequiresGrad) inner.Backward(yr, y.Grad);
                if (x.RequiresGrad && xd.Grad != null)
                {
                    var g = x.EnsureGrad().Span;
                    System.Numerics.Tensors.TensorPrimitives.Add(g, xd.Grad.Span, g);
                }
            }
            if (rng != null) rng.State = after!;
        });
        return y;
    }
}
