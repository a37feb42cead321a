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

public static partial class Ops
{
    /// <summary>y = 1 / (1 + e^(−x)) elementwise; backward dx += dy · y · (1 − y).</summary>
    public static Tensor Sigmoid(Tensor x)
    {
        x = Contiguous(x);
        var y = Tensor.Empty(x.Shape);
        var xs = x.Span; var ys = y.Span;
        for (int i = 0; i < xs.Length; i++) ys[i] = 1f / (1f + MathF.Exp(-xs[i]));
        if (Tape.Needs(x))
            Tape.Add(y, () =>
            {
                var dy = y.Grad!.Span; var yv = y.Span; var g = x.EnsureGrad().Span;
                for (int i = 0; i < g.Length; i++) g[i] += dy[i] * yv[i] * (1f - yv[i]);
            });
        return y;
    }

    /// <summary>y = log(1 + e^x) elementwise (x for x &gt; 20, where the two agree in float); backward dx += dy · σ(x).</summary>
    public static Tensor Softplus(Tensor x)
    {
        x = Contiguous(x);
        var y = Tensor.Empty(x.Shape);
        var xs = x.Span; var ys = y.Span;
        for (int i = 0; i < xs.Length; i++) ys[i] = xs[i] > 20f ? xs[i] : (float)Math.Log(1 + Math.Exp(xs[i]));
        if (Tape.Needs(x))
            Tape.Add(y, () =>
            {
                var dy = y.Grad!.Span; var xv = x.Span; var g = x.EnsureGrad().Span;
                for (int i = 0; i < g.Length; i++) g[i] += dy[i] / (1f + MathF.Exp(-xv[i]));
            });
        return y;
    }
}
