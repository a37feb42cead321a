// Differentiable tensor operations, part 2: the neural-network kernels (embedding, norms, RoPE, activations,
// softmax, dropout, attention, cross-entropy). Each forwards to its kernel pair in Kernels/.
using System.Numerics.Tensors;
using Tensor = InstructTune.Engine.Tensors.Tensor;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Autograd;

public static partial class Ops
{
    /// <summary>Rows of W (V, C) picked by ids (any shape) → ids.Shape + [C]. Backward scatter-adds into dW.</summary>
    public static Tensor Embedding(Tensor W, IntTensor ids)
    {
        if (W.Rank != 2) throw new ArgumentException($"Embedding: weight must be 2-D, got {Tensor.ShapeString(W.Shape)}");
        int V = W.Size(0), C = W.Size(1);
        var y = Tensor.Empty([.. ids.Shape, C]);
        EmbeddingKernel.Forward(W.Span, ids.Data, y.Span, V, C);
        if (Tape.Needs(W))
            Tape.Add(y, () => EmbeddingKernel.Backward(W.EnsureGrad().Span, ids.Data, y.Grad!.Span, V, C));
        return y;
    }

    /// <summary>RMSNorm over the last dimension with weight w (C).</summary>
    public static Tensor RmsNorm(Tensor x, Tensor w, float eps)
    {
        int C = x.Size(-1);
        if (w.Length != C) throw new ArgumentException($"RmsNorm: input {Tensor.ShapeString(x.Shape)} does not match weight {Tensor.ShapeString(w.Shape)}");
        x = Contiguous(x);
        int N = x.Length / C;
        var y = Tensor.Empty(x.Shape);
        var rstd = Tensor.Empty([N]);
        RmsNormKernel.Forward(x.Span, w.Span, y.Span, rstd.Span, N, C, eps);
        if (Tape.Needs(x, w))
            Tape.Add(y, () =>
            {
                var dx = x.RequiresGrad ? x.EnsureGrad().Span : Tensor.Empty(x.Shape, zero: true).Span;
                var dw = w.RequiresGrad ? w.EnsureGrad().Span : new float[C];
                RmsNormKernel.Backward(y.Grad!.Span, x.Span, w.Span, rstd.Span, dx, dw, N, C);
            });
        return y;
    }

    /// <summary>LayerNorm over the last dimension with weight w (C) and optional bias b (C).</summary>
    public static Tensor LayerNorm(Tensor x, Tensor w, Tensor? b, float eps)
    {
        int C = x.Size(-1);
        if (w.Length != C || (b != null && b.Length != C))
            throw new ArgumentException($"LayerNorm: input {Tensor.ShapeString(x.Shape)} does not match weight {Tensor.ShapeString(w.Shape)}");
        x = Contiguous(x);
        int N = x.Length / C;
        var y = Tensor.Empty(x.Shape);
        var mean = Tensor.Empty([N]); var rstd = Tensor.Empty([N]);
        LayerNormKernel.Forward(x.Span, w.Span, b == null ? default : b.Span, y.Span, mean.Span, rstd.Span, N, C, eps);
        if (Tape.Needs(x, w, b))
            Tape.Add(y, () =>
            {
                var dx = x.RequiresGrad ? x.EnsureGrad().Span : Tensor.Empty(x.Shape, zero: true).Span;
                var dw = w.RequiresGrad ? w.EnsureGrad().Span : default;
                var db = b is { RequiresGrad: true } ? b.EnsureGrad().Span : default;
                LayerNormKernel.Backward(y.Grad!.Span, x.Span, w.Span, mean.Span, rstd.Span, dx, dw, db, N, C);
            });
        return y;
    }

    /// <summary>
    /// Rotary embedding (rotate_half layout) of x viewed as (N, heads, headDim), N = rows; cos/sin (N, headDim/2)
    /// from RopeKernel.CosSin (constants, no gradient).
    /// </summary>
    public static Tensor Rope(Tensor x, Tensor cos, Tensor sin, int heads, int headDim)
    {
        x = Contiguous(x);
        int N = x.Length / (heads * headDim);
        if (N * heads * headDim != x.Length || cos.Length != N * (headDim / 2) || sin.Length != cos.Length)
            throw new ArgumentException($"Rope: input {Tensor.ShapeString(x.Shape)} with {heads} heads of {headDim} does not match cos {Tensor.ShapeString(cos.Shape)}");
        var y = Tensor.Empty(x.Shape);
        RopeKernel.Forward(x.Span, cos.Span, sin.Span, y.Span, N, heads, headDim);
        if (Tape.Needs(x))
            Tape.Add(y, () => RopeKernel.Backward(y.Grad!.Span, cos.Span, sin.Span, x.EnsureGrad().Span, N, heads, headDim));
        return y;
    }

    public static Tensor Silu(Tensor x)
    {
        x = Contiguous(x);
        var y = Tensor.Empty(x.Shape);
        ActivationKernels.SiluForward(x.Span, y.Span);
        if (Tape.Needs(x)) Tape.Add(y, () => ActivationKernels.SiluBackward(y.Grad!.Span, x.Span, x.EnsureGrad().Span));
        return y;
    }

    /// <summary>y = tanh(x); backward dx += dy·(1 − y²). (PEFT's prefix-tuning projection MLP uses it.)</summary>
    public static Tensor Tanh(Tensor x)
    {
        x = Contiguous(x);
        var y = Tensor.Empty(x.Shape);
        System.Numerics.Tensors.TensorPrimitives.Tanh(x.Span, y.Span);
        if (Tape.Needs(x))
            Tape.Add(y, () =>
            {
                var dy = y.Grad!.Span; var ys = y.Span; var g = x.EnsureGrad().Span;
                for (int i = 0; i < g.Length; i++) g[i] += dy[i] * (1f - ys[i] * ys[i]);
            });
        return y;
    }

    public static Tensor Gelu(Tensor x, bool tanhApproximation = false)
    {
        x = Contiguous(x);
        var y = Tensor.Empty(x.Shape);
        ActivationKernels.GeluForward(x.Span, y.Span, tanhApproximation);
        if (Tape.Needs(x)) Tape.Add(y, () => ActivationKernels.GeluBackward(y.Grad!.Span, x.Span, x.EnsureGrad().Span, tanhApproximation));
        return y;
    }

    /// <summary>silu(gate) ⊙ up, the Llama MLP nonlinearity.</summary>
    public static Tensor SwiGlu(Tensor gate, Tensor up)
    {
        Tensor.CheckSameShape("SwiGlu", gate, up);
        gate = Contiguous(gate); up = Contiguous(up);
        var y = Tensor.Empty(gate.Shape);
        ActivationKernels.SwiGluForward(gate.Span, up.Span, y.Span);
        if (Tape.Needs(gate, up))
            Tape.Add(y, () =>
            {
                var dg = gate.RequiresGrad ? gate.EnsureGrad().Span : Tensor.Empty(gate.Shape, zero: true).Span;
                var du = up.RequiresGrad ? up.EnsureGrad().Span : Tensor.Empty(up.Shape, zero: true).Span;
                ActivationKernels.SwiGluBackward(y.Grad!.Span, gate.Span, up.Span, dg, du);
            });
        return y;
    }

    /// <summary>Softmax over the last dimension (subtracts the row max).</summary>
    public static Tensor Softmax(Tensor x)
    {
        x = Contiguous(x);
        int C = x.Size(-1), N = x.Length / C;
        var y = Tensor.Empty(x.Shape);
        SoftmaxKernel.Forward(x.Span, y.Span, N, C);
        if (Tape.Needs(x)) Tape.Add(y, () => SoftmaxKernel.Backward(y.Grad!.Span, y.Span, x.EnsureGrad().Span, N, C));
        return y;
    }

    /// <summary>Inverted dropout: zero with probability p, scale survivors by 1/(1−p). Identity when p = 0.</summary>
    public static Tensor Dropout(Tensor x, float p, Rng rng)
    {
        if (p == 0f) return x;
        x = Contiguous(x);
        var mask = Tensor.Empty(x.Shape);
        rng.DropoutMask(mask.Span, p);
        var y = Tensor.Empty(x.Shape);
        TensorPrimitives.Multiply(x.Span, mask.Span, y.Span);
        if (Tape.Needs(x))
            Tape.Add(y, () => { var g = x.EnsureGrad().Span; TensorPrimitives.MultiplyAdd(y.Grad!.Span, mask.Span, g, g); });
        return y;
    }

    /// <summary>
    /// Causal scaled-dot-product attention with grouped-query heads: q (B·Tq rows of H·hd), k, v (B·Tk rows of KV·hd)
    /// → (same shape as q). See AttentionKernel for the layout, masks and the memory trade.
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, AttentionDims d, float scale, AttentionMask? mask = null)
    {
        q = Contiguous(q); k = Contiguous(k); v = Contiguous(v);
        if (q.Length != d.B * d.Tq * d.H * d.hd || k.Length != v.Length)
            throw new ArgumentException($"Attention: q {Tensor.ShapeString(q.Shape)}, k {Tensor.ShapeString(k.Shape)}, v {Tensor.ShapeString(v.Shape)} do not match {d}");
        var o = Tensor.Empty(q.Shape);
        var lse = Tensor.Empty([d.B * d.H * d.Tq]);
        AttentionKernel.Forward(q.Span, k.Span, v.Span, o.Span, lse.Span, d, scale, mask);
        if (Tape.Needs(q, k, v))
            Tape.Add(o, () =>
            {
                var dq = q.RequiresGrad ? q.EnsureGrad().Span : Tensor.Empty(q.Shape, zero: true).Span;
                var dk = k.RequiresGrad ? k.EnsureGrad().Span : Tensor.Empty(k.Shape, zero: true).Span;
                var dv = v.RequiresGrad ? v.EnsureGrad().Span : Tensor.Empty(v.Shape, zero: true).Span;
                AttentionKernel.Backward(o.Grad!.Span, q.Span, k.Span, v.Span, o.Span, lse.Span, dq, dk, dv, d, scale, mask);
            });
        return o;
    }

    /// <summary>
    /// Attention with a learnable per-head bias β (H) on flagged keys (instruction-biased attention):
    /// s_ij = scale·q_i·k_j + β_h·f_j, f = keyFlags (B, Tk) ∈ {0, 1}; otherwise as <see cref="Attention"/>.
    /// With β all zero the bias is skipped (adding 0 is exact), so the output is bit-identical to Attention's.
    /// dβ_h = Σ_{b,i} Σ_j ds_ij f_j with ds_ij = p_ij (do_i·v_j − do_i·o_i), i.e. Σ_{b,i} (do_i·o^f_i − (do_i·o_i)·π_i),
    /// where o^f_i = Σ_j p_ij f_j v_j and π_i = Σ_j p_ij f_j: two more forward passes over the same probabilities
    /// (values v ⊙ f and f broadcast), so the fused kernels stay as they are.
    /// </summary>
    public static Tensor KeyBiasedAttention(Tensor q, Tensor k, Tensor v, AttentionDims d, float scale, AttentionMask? mask,
        Tensor headBias, byte[] keyFlags)
    {
        if (headBias.Length != d.H) throw new ArgumentException($"KeyBiasedAttention: head bias has {headBias.Length} entries for {d.H} heads");
        if (keyFlags.Length != d.B * d.Tk) throw new ArgumentException($"KeyBiasedAttention: {keyFlags.Length} key flags for (B={d.B}, Tk={d.Tk})");
        q = Contiguous(q); k = Contiguous(k); v = Contiguous(v);
        mask ??= AttentionMask.CausalOnly;
        var beta = headBias.ToArray();
        var m = Array.TrueForAll(beta, x => x == 0f) ? mask : mask.WithKeyBias(keyFlags, beta);
        var o = Tensor.Empty(q.Shape);
        var lse = Tensor.Empty([d.B * d.H * d.Tq]);
        AttentionKernel.Forward(q.Span, k.Span, v.Span, o.Span, lse.Span, d, scale, m);
        if (Tape.Needs(q, k, v) || Tape.Needs(headBias))
            Tape.Add(o, () =>
            {
                var dout = o.Grad!.Span;
                if (q.RequiresGrad || k.RequiresGrad || v.RequiresGrad)
                {
                    var dq = q.RequiresGrad ? q.EnsureGrad().Span : Tensor.Empty(q.Shape, zero: true).Span;
                    var dk = k.RequiresGrad ? k.EnsureGrad().Span : Tensor.Empty(k.Shape, zero: true).Span;
                    var dv = v.RequiresGrad ? v.EnsureGrad().Span : Tensor.Empty(v.Shape, zero: true).Span;
                    AttentionKernel.Backward(dout, q.Span, k.Span, v.Span, o.Span, lse.Span, dq, dk, dv, d, scale, m);
                }
                if (!headBias.RequiresGrad) return;
                int row = d.KV * d.hd, hd = d.hd;
                var vf = new float[v.Length];                                   // v ⊙ f   (B·Tk, KV·hd)
                var ones = new float[v.Length];                                 // f broadcast
                var vs = v.Span;
                for (int r = 0; r < d.B * d.Tk; r++)
                    if (keyFlags[r] != 0) { vs.Slice(r * row, row).CopyTo(vf.AsSpan(r * row, row)); ones.AsSpan(r * row, row).Fill(1f); }
                var of = new float[o.Length];
                var op = new float[o.Length];
                var scratch = new float[lse.Length];
                AttentionKernel.Forward(q.Span, k.Span, vf, of, scratch, d, scale, m);      // o^f_i
                AttentionKernel.Forward(q.Span, k.Span, ones, op, scratch, d, scale, m);    // π_i in every column
                var os = o.Span;
                var db = headBias.EnsureGrad().Span;
                var acc = new double[d.H];
                for (int bi = 0; bi < d.B * d.Tq; bi++)
                    for (int h = 0; h < d.H; h++)
                    {
                        int at = (bi * d.H + h) * hd;
                        var doi = dout.Slice(at, hd);
                        acc[h] += System.Numerics.Tensors.TensorPrimitives.Dot(doi, of.AsSpan(at, hd))
                            - (double)System.Numerics.Tensors.TensorPrimitives.Dot(doi, os.Slice(at, hd)) * op[at];
                    }
                for (int h = 0; h < d.H; h++) db[h] += (float)acc[h];
            });
        return o;
    }

    /// <summary>
    /// Per-row cross-entropy losses (N) of logits (N, V) against targets (N) (ignore index −100 → 0), fused with
    /// log-softmax, optional label smoothing. Sum or scale the result for a batch loss (see CrossEntropy).
    /// </summary>
    public static Tensor CrossEntropyLosses(Tensor logits, ReadOnlySpan<int> targets, float smoothing, out int count)
    {
        int V = logits.Size(-1), N = logits.Length / V;
        if (targets.Length != N)
            throw new ArgumentException($"CrossEntropy: logits {Tensor.ShapeString(logits.Shape)} vs {targets.Length} targets");
        logits = Contiguous(logits);
        var t = targets.ToArray();
        var losses = Tensor.Empty([N]);
        var lse = Tensor.Empty([N]);
        count = CrossEntropyKernel.Forward(logits.Span, t, losses.Span, lse.Span, N, V, smoothing);
        if (Tape.Needs(logits))
            Tape.Add(losses, () => CrossEntropyKernel.Backward(logits.Span, t, lse.Span, losses.Grad!.Span, logits.EnsureGrad().Span, N, V, smoothing));
        return losses;
    }

    /// <summary>Sum of per-token losses (scalar) and the number of tokens that count; divide by a count across micro-batches.</summary>
    public static Tensor CrossEntropySum(Tensor logits, ReadOnlySpan<int> targets, out int count, float smoothing = 0f)
        => Sum(CrossEntropyLosses(logits, targets, smoothing, out count));

    /// <summary>Mean cross-entropy over the tokens whose target is not −100 (torch's reduction='mean'); 0 when none count.</summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, float smoothing = 0f)
    {
        var sum = CrossEntropySum(logits, targets, out int count, smoothing);
        return Scale(sum, count == 0 ? 0f : 1f / count);
    }
}
