// Differentiable tensor operations, part 1: shapes, elementwise arithmetic, reductions, matrix products.
// Each op computes its forward with a kernel and, when the tape records, registers a closure that calls the
// backward kernel with what forward saved. Gradients accumulate (+=) into the inputs' Grad.
using System.Numerics.Tensors;
using Tensor = InstructTune.Engine.Tensors.Tensor;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Autograd;

public static partial class Ops
{
    /// <summary>Same elements, new shape (one dimension may be −1). A view when x is contiguous.</summary>
    public static Tensor Reshape(Tensor x, params int[] shape)
    {
        var src = x.IsContiguous ? x : Contiguous(x);
        var y = src.View(shape);
        if (Tape.Needs(src))
            Tape.Add(y, () =>
            {
                if (Tape.TryHandOverGrad(y, src)) return;   // dx = dy, same storage: no copy, no extra buffer
                var g = src.EnsureGrad().Span; TensorPrimitives.Add(g, y.Grad!.Span, g);
            });
        return y;
    }

    /// <summary>Swaps the last two dimensions as a strided view (no copy); MatMul consumes it as a transposed operand.</summary>
    public static Tensor Transpose(Tensor x)
    {
        if (x.Rank < 2) throw new ArgumentException($"Transpose: needs rank ≥ 2, got {Tensor.ShapeString(x.Shape)}");
        var shape = (int[])x.Shape.Clone(); var strides = (int[])x.Strides.Clone();
        (shape[^1], shape[^2]) = (shape[^2], shape[^1]);
        (strides[^1], strides[^2]) = (strides[^2], strides[^1]);
        var y = new Tensor(x.Storage, x.Offset, shape, strides);
        Tape.TrackView(x, y);
        if (Tape.Needs(x))
            Tape.Add(y, () =>
            {
                // y[..., i, j] = x[..., j, i]: add dy back transposed.
                var g = x.EnsureGrad().Span; var dy = y.Grad!.Span;
                int R = shape[^2], C = shape[^1], batch = y.Length / Math.Max(1, R * C);
                for (int bt = 0; bt < batch; bt++)
                    for (int i = 0; i < R; i++)
                        for (int j = 0; j < C; j++) g[bt * R * C + j * R + i] += dy[bt * R * C + i * C + j];
            });
        return y;
    }

    /// <summary>A contiguous copy of a strided view (identity for contiguous tensors).</summary>
    public static Tensor Contiguous(Tensor x)
    {
        if (x.IsContiguous) return x;
        var y = Tensor.Empty(x.Shape);
        x.CopyTo(y.Span);
        // Gradients are always contiguous in logical order, so the copy's gradient adds straight through.
        if (Tape.Needs(x))
            Tape.Add(y, () => { var g = x.EnsureGrad().Span; TensorPrimitives.Add(g, y.Grad!.Span, g); });
        return y;
    }

    public static Tensor Add(Tensor a, Tensor b)
    {
        Tensor.CheckSameShape("Add", a, b);
        var y = Tensor.Empty(a.Shape);
        TensorPrimitives.Add(a.Span, b.Span, y.Span);
        if (Tape.Needs(a, b))
            Tape.Add(y, () =>
            {
                var dy = y.Grad!.Span;
                if (a.RequiresGrad) { var g = a.EnsureGrad().Span; TensorPrimitives.Add(g, dy, g); }
                if (b.RequiresGrad) { var g = b.EnsureGrad().Span; TensorPrimitives.Add(g, dy, g); }
            });
        return y;
    }

    public static Tensor Mul(Tensor a, Tensor b)
    {
        Tensor.CheckSameShape("Mul", a, b);
        var y = Tensor.Empty(a.Shape);
        TensorPrimitives.Multiply(a.Span, b.Span, y.Span);
        if (Tape.Needs(a, b))
            Tape.Add(y, () =>
            {
                var dy = y.Grad!.Span;
                if (a.RequiresGrad) { var g = a.EnsureGrad().Span; TensorPrimitives.MultiplyAdd(dy, b.Span, g, g); }
                if (b.RequiresGrad) { var g = b.EnsureGrad().Span; TensorPrimitives.MultiplyAdd(dy, a.Span, g, g); }
            });
        return y;
    }

    /// <summary>
    /// Per-column scaling y[…, c] = x[…, c]·v[c]: x (…, C), v (C). Backward: dx[…, c] += dy[…, c]·v[c],
    /// dv[c] += Σ_rows dy[…, c]·x[…, c]. PEFT's per-channel vectors use it (IA3's ia3_l, DoRA's magnitude).
    /// </summary>
    public static Tensor MulColumns(Tensor x, Tensor v)
    {
        if (v.Rank != 1 || x.Size(-1) != v.Length)
            throw new ArgumentException($"MulColumns: vector {Tensor.ShapeString(v.Shape)} does not match the last dimension of {Tensor.ShapeString(x.Shape)}");
        x = Contiguous(x);
        int C = v.Length, R = x.Length / Math.Max(1, C);
        var y = Tensor.Empty(x.Shape);
        var xs = x.Span; var ys = y.Span; var vs = v.Span;
        for (int r = 0; r < R; r++) TensorPrimitives.Multiply(xs.Slice(r * C, C), vs, ys.Slice(r * C, C));
        if (Tape.Needs(x, v))
            Tape.Add(y, () =>
            {
                var dy = y.Grad!.Span;
                if (x.RequiresGrad)
                {
                    var g = x.EnsureGrad().Span;
                    for (int r = 0; r < R; r++) TensorPrimitives.MultiplyAdd(dy.Slice(r * C, C), v.Span, g.Slice(r * C, C), g.Slice(r * C, C));
                }
                if (v.RequiresGrad)
                {
                    var g = v.EnsureGrad().Span;
                    for (int r = 0; r < R; r++) TensorPrimitives.MultiplyAdd(dy.Slice(r * C, C), x.Span.Slice(r * C, C), g, g);
                }
            });
        return y;
    }

    /// <summary>
    /// The same P rows in front of every sequence: prefix (P, D), x (B·T, D) → y (B·(P+T), D) with
    /// y[b, :P] = prefix and y[b, P:] = x[b]. Backward: dprefix += Σ_b dy[b, :P], dx[b] += dy[b, P:].
    /// Prompt tuning (virtual token embeddings) and prefix tuning (per-layer keys/values) use it.
    /// </summary>
    public static Tensor PrependRows(Tensor prefix, Tensor x, int B)
    {
        if (prefix.Rank != 2 || x.Rank != 2 || prefix.Size(1) != x.Size(1) || x.Size(0) % B != 0)
            throw new ArgumentException($"PrependRows: prefix {Tensor.ShapeString(prefix.Shape)} and x {Tensor.ShapeString(x.Shape)} do not fit B={B} sequences of width prefix[1]");
        prefix = Contiguous(prefix); x = Contiguous(x);
        int P = prefix.Size(0), D = prefix.Size(1), T = x.Size(0) / B;
        var y = Tensor.Empty([B * (P + T), D]);
        for (int b = 0; b < B; b++)
        {
            prefix.Span.CopyTo(y.Span.Slice(b * (P + T) * D, P * D));
            x.Span.Slice(b * T * D, T * D).CopyTo(y.Span.Slice((b * (P + T) + P) * D, T * D));
        }
        if (Tape.Needs(prefix, x))
            Tape.Add(y, () =>
            {
                var dy = y.Grad!.Span;
                for (int b = 0; b < B; b++)
                {
                    if (prefix.RequiresGrad) { var g = prefix.EnsureGrad().Span; TensorPrimitives.Add(g, dy.Slice(b * (P + T) * D, P * D), g); }
                    if (x.RequiresGrad) { var g = x.EnsureGrad().Span.Slice(b * T * D, T * D); TensorPrimitives.Add(g, dy.Slice((b * (P + T) + P) * D, T * D), g); }
                }
            });
        return y;
    }

    /// <summary>y[i] = x[rows[i]] for x (N, D); backward dx[rows[i]] += dy[i] (rows may repeat).</summary>
    public static Tensor GatherRows(Tensor x, int[] rows)
    {
        if (x.Rank != 2) throw new ArgumentException($"GatherRows: x must be 2-D, got {Tensor.ShapeString(x.Shape)}");
        x = Contiguous(x);
        int N = x.Size(0), D = x.Size(1);
        var y = Tensor.Empty([rows.Length, D]);
        for (int i = 0; i < rows.Length; i++)
        {
            if ((uint)rows[i] >= (uint)N) throw new ArgumentOutOfRangeException(nameof(rows), $"GatherRows: row {rows[i]} outside [0, {N})");
            x.Span.Slice(rows[i] * D, D).CopyTo(y.Span.Slice(i * D, D));
        }
        if (Tape.Needs(x))
            Tape.Add(y, () =>
            {
                var dy = y.Grad!.Span; var g = x.EnsureGrad().Span;
                for (int i = 0; i < rows.Length; i++) TensorPrimitives.Add(g.Slice(rows[i] * D, D), dy.Slice(i * D, D), g.Slice(rows[i] * D, D));
            });
        return y;
    }

    public static Tensor Scale(Tensor x, float s)
    {
        var y = Tensor.Empty(x.Shape);
        TensorPrimitives.Multiply(x.Span, s, y.Span);
        if (Tape.Needs(x))
            Tape.Add(y, () => { var g = x.EnsureGrad().Span; TensorPrimitives.MultiplyAdd(y.Grad!.Span, s, g, g); });
        return y;
    }

    /// <summary>Sum of all elements (scalar, accumulated in double).</summary>
    public static Tensor Sum(Tensor x)
    {
        var y = Tensor.Empty([1]);
        double acc = 0;
        foreach (var v in x.Span) acc += v;
        y.Span[0] = (float)acc;
        if (Tape.Needs(x))
            Tape.Add(y, () => { var g = x.EnsureGrad().Span; TensorPrimitives.Add(g, y.Grad!.Span[0], g); });
        return y;
    }

    public static Tensor Mean(Tensor x) => Scale(Sum(x), 1f / x.Length);

    /// <summary>
    /// Linear layer y = x·Wᵀ + b: x (…, in), W (out, in) as stored by Hugging Face, b (out) or null; y (…, out).
    /// Backward: dx += dy·W, dW += dyᵀ·x, db += Σ_rows dy.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor W, Tensor? b = null)
    {
        if (W.Rank != 2 || x.Size(-1) != W.Size(1))
            throw new ArgumentException($"Linear: input {Tensor.ShapeString(x.Shape)} does not match weight {Tensor.ShapeString(W.Shape)} (needs last dim = weight dim 1)");
        if (b != null && (b.Rank != 1 || b.Length != W.Size(0)))
            throw new ArgumentException($"Linear: bias {Tensor.ShapeString(b.Shape)} does not match weight {Tensor.ShapeString(W.Shape)}");
        x = Contiguous(x);
        int K = W.Size(1), N = W.Size(0), M = x.Length / Math.Max(1, K);
        var shape = (int[])x.Shape.Clone(); shape[^1] = N;
        var y = Tensor.Empty(shape);
        var ys = y.Span;
        if (b != null) for (int m = 0; m < M; m++) b.Span.CopyTo(ys.Slice(m * N, N));
        bool bf16 = Autocast.Bf16;
        Product(bf16, false, true, M, N, K, x.Span, K, W.Span, K, b == null ? 0f : 1f, ys, N);
        if (Tape.Needs(x, W, b))
            Tape.Add(y, () => LinearBackward(x, W, b, y.Grad!, M, N, K, bf16));
        return y;
    }

    private static void LinearBackward(Tensor x, Tensor W, Tensor? b, Tensor dy, int M, int N, int K, bool bf16)
    {
        var dys = dy.Span;
        // y = x·Wᵀ  ⇒  dx (M,K) += dy (M,N) · W (N,K)
        if (x.RequiresGrad) Product(bf16, false, false, M, K, N, dys, N, W.Span, K, 1f, x.EnsureGrad().Span, K);
        // dW (N,K) += dyᵀ (N,M) · x (M,K)
        if (W.RequiresGrad) Product(bf16, true, false, N, K, M, dys, N, x.Span, K, 1f, W.EnsureGrad().Span, K);
        if (b != null && b.RequiresGrad)
        {
            var db = b.EnsureGrad().Span;
            for (int m = 0; m < M; m++) TensorPrimitives.Add(db, dys.Slice(m * N, N), db);
        }
    }

    /// <summary>
    /// Matrix product of 2-D tensors a (M,K) · b (K,N). A transposed view (from Transpose) is consumed
    /// without a copy as Gemm's transA/transB flag.
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        if (a.Rank != 2 || b.Rank != 2 || a.Size(1) != b.Size(0))
            throw new ArgumentException($"MatMul: shapes {Tensor.ShapeString(a.Shape)} and {Tensor.ShapeString(b.Shape)} do not chain (needs a[1] = b[0])");
        int M = a.Size(0), K = a.Size(1), N = b.Size(1);
        var (ta, lda) = Operand(ref a);
        var (tb, ldb) = Operand(ref b);
        var y = Tensor.Empty([M, N]);
        bool bf16 = Autocast.Bf16;
        Product(bf16, ta, tb, M, N, K, Raw(a), lda, Raw(b), ldb, 0f, y.Span, N);
        if (Tape.Needs(a, b))
            Tape.Add(y, () =>
            {
                var dy = y.Grad!.Span;
                // y = op(a)·op(b) ⇒ da = dy·op(b)ᵀ (M,K), db = op(a)ᵀ·dy (K,N), both in logical row-major order
                // (a transposed view's gradient is logical too; Transpose's backward maps it to the source).
                if (a.RequiresGrad) Product(bf16, false, !tb, M, K, N, dy, N, Raw(b), ldb, 1f, a.EnsureGrad().Span, K);
                if (b.RequiresGrad) Product(bf16, !ta, false, K, N, M, Raw(a), lda, dy, N, 1f, b.EnsureGrad().Span, N);
            });
        return y;
    }

    /// <summary>One GEMM of a Linear/MatMul node: float32, or under <see cref="Autocast"/> bf16 operands with
    /// float32 accumulation (the float32 tensors themselves are never rounded).</summary>
    private static void Product(bool bf16, bool ta, bool tb, int M, int N, int K, ReadOnlySpan<float> A, int lda,
        ReadOnlySpan<float> B, int ldb, float beta, Span<float> C, int ldc)
    {
        if (bf16) Gemm.SgemmAsBf16(ta, tb, M, N, K, 1f, A, lda, B, ldb, beta, C, ldc);
        else Gemm.Sgemm(ta, tb, M, N, K, 1f, A, lda, B, ldb, beta, C, ldc);
    }

    // A 2-D operand as (stored transposed?, leading dimension); other non-contiguous views are copied first.
    private static (bool Trans, int Ld) Operand(ref Tensor t)
    {
        if (t.IsContiguous) return (false, t.Size(1));
        if (t.Strides[0] == 1 && t.Strides[1] == t.Size(0)) return (true, t.Size(0));
        t = Contiguous(t);
        return (false, t.Size(1));
    }

    private static ReadOnlySpan<float> Raw(Tensor t) => t.Storage.AsSpan(t.Offset, t.Length);
}
