// Differentiable tensor operations, part 3: pooling over token segments (the instruction context).
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Autograd;

public static partial class Ops
{
    /// <summary>
    /// x (N, D) → y (N, D): y[t] = mean of the rows j ≤ t of t's run with select[j] = 1 (0 before the first one);
    /// runs restart where restart[t] = 1 (<see cref="SegmentMeanKernel"/>).
    /// </summary>
    public static Tensor CausalSegmentMean(Tensor x, byte[] select, byte[] restart)
    {
        if (x.Rank != 2) throw new ArgumentException($"CausalSegmentMean: x must be 2-D, got {Tensor.ShapeString(x.Shape)}");
        x = Contiguous(x);
        int N = x.Size(0), D = x.Size(1);
        var y = Tensor.Empty([N, D]);
        var count = new int[N];
        SegmentMeanKernel.Forward(x.Span, y.Span, count, select, restart, N, D);
        if (Tape.Needs(x))
            Tape.Add(y, () => SegmentMeanKernel.Backward(y.Grad!.Span, x.EnsureGrad().Span, count, select, restart, N, D));
        return y;
    }
}
