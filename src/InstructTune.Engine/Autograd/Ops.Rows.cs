// Differentiable per-row scaling: y[r, :] = x[r, :]·s[r]. iPEFT's gates scale each token's adapter output by its
// example's gate.
using System.Numerics.Tensors;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Engine.Autograd;

public static partial class Ops
{
    /// <summary>
    /// y (R, C) = x (R, C) scaled row by row by s (R) (x may have more dimensions: rows are all but the last).
    /// Backward: dx[r, c] += dy[r, c]·s[r]; ds[r] += Σ_c dy[r, c]·x[r, c].
    /// </summary>
    public static Tensor MulRows(Tensor x, Tensor s)
    {
        int C = x.Size(-1), R = x.Length / Math.Max(1, C);
        if (s.Length != R) throw new ArgumentException($"MulRows: {s.Length} scales for the {R} rows of {Tensor.ShapeString(x.Shape)}");
        x = Contiguous(x); s = Contiguous(s);
        var y = Tensor.Empty(x.Shape);
        var xs = x.Span; var ys = y.Span; var ss = s.Span;
        for (int r = 0; r < R; r++) TensorPrimitives.Multiply(xs.Slice(r * C, C), ss[r], ys.Slice(r * C, C));
        if (Tape.Needs(x, s))
            Tape.Add(y, () =>
            {
                var dy = y.Grad!.Span;
                if (x.RequiresGrad)
                {
                    var g = x.EnsureGrad().Span;
                    for (int r = 0; r < R; r++) TensorPrimitives.MultiplyAdd(dy.Slice(r * C, C), s.Span[r], g.Slice(r * C, C), g.Slice(r * C, C));
                }
                if (s.RequiresGrad)
                {
                    var g = s.EnsureGrad().Span;
                    for (int r = 0; r < R; r++) g[r] += TensorPrimitives.Dot(dy.Slice(r * C, C), x.Span.Slice(r * C, C));
                }
            });
        return y;
    }
}

public static partial class Ops
{
    /// <summary>
    /// A table with some rows replaced: W (R, C), rows (k, C) → y (R, C) with y[start + i] = rows[i] and every other
    /// row W's (PEFT's trainable tokens: base.weight.index_copy(0, indices, delta), for consecutive indices).
    /// Backward: drows[i] += dy[start + i]; dW[r] += dy[r] for the rows kept. A frozen W gets nothing, so only the
    /// replaced rows train (instruction marker tokens under LoRA/QLoRA).
    /// </summary>
    public static Tensor OverrideRows(Tensor W, int start, Tensor rows)
    {
        if (W.Rank != 2 || rows.Rank != 2 || rows.Size(1) != W.Size(1) || start < 0 || start + rows.Size(0) > W.Size(0))
            throw new ArgumentException($"OverrideRows: rows {Tensor.ShapeString(rows.Shape)} at {start} do not fit W {Tensor.ShapeString(W.Shape)}");
        W = Contiguous(W); rows = Contiguous(rows);
        int C = W.Size(1), k = rows.Size(0);
        var y = Tensor.Empty(W.Shape);
        W.Span.CopyTo(y.Span);
        rows.Span.CopyTo(y.Span.Slice(start * C, k * C));
        if (Tape.Needs(W, rows))
            Tape.Add(y, () =>
            {
                var dy = y.Grad!.Span;
                if (rows.RequiresGrad) { var g = rows.EnsureGrad().Span; TensorPrimitives.Add(g, dy.Slice(start * C, k * C), g); }
                if (W.RequiresGrad)
                {
                    var g = W.EnsureGrad().Span;
                    TensorPrimitives.Add(g[..(start * C)], dy[..(start * C)], g[..(start * C)]);
                    int end = (start + k) * C;
                    TensorPrimitives.Add(g[end..], dy[end..], g[end..]);
                }
            });
        return y;
    }
}
