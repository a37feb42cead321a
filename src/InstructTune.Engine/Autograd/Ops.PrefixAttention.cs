// Differentiable per-document prefix attention (PrefixAttentionKernel): IAPT's generated soft prompts, attended by
// every token of their own sequence with a softmax of their own.
using Tensor = InstructTune.Engine.Tensors.Tensor;
using InstructTune.Engine.Kernels;

namespace InstructTune.Engine.Autograd;

public static partial class Ops
{
    /// <summary>
    /// q (N, H·hd) (rotated queries), k, v (docs·P, KV·hd), doc (N) the document of each row (−1 = none) →
    /// o (N, H·hd), o_n = Σ_p softmax_p(scale·q_n·k_(doc n, p))·v_(doc n, p) per head (GQA). Gradients to q, k, v.
    /// </summary>
    public static Tensor PrefixAttention(Tensor q, Tensor k, Tensor v, int[] doc, int P, int H, int KV, int hd, float scale)
    {
        if (q.Rank != 2 || q.Size(1) != H * hd || k.Rank != 2 || k.Size(1) != KV * hd || !k.Shape.AsSpan().SequenceEqual(v.Shape) || k.Size(0) % P != 0)
            throw new ArgumentException($"PrefixAttention: q {Tensor.ShapeString(q.Shape)}, k {Tensor.ShapeString(k.Shape)}, v {Tensor.ShapeString(v.Shape)} do not fit P={P}, H={H}, KV={KV}, hd={hd}");
        q = Contiguous(q); k = Contiguous(k); v = Contiguous(v);
        int N = q.Size(0);
        var o = Tensor.Empty([N, H * hd]);
        var probs = new float[N * H * P];
        PrefixAttentionKernel.Forward(q.Span, k.Span, v.Span, o.Span, probs, doc, N, P, H, KV, hd, scale);
        if (Tape.Needs(q, k, v))
            Tape.Add(o, () => PrefixAttentionKernel.Backward(o.Grad!.Span, q.Span, k.Span, v.Span, probs, doc,
                q.RequiresGrad ? q.EnsureGrad().Span : default, k.RequiresGrad ? k.EnsureGrad().Span : default,
                v.RequiresGrad ? v.EnsureGrad().Span : default, N, P, H, KV, hd, scale));
        return o;
    }
}
