// Differentiable sparse weight delta (IaSFT): z = y + x·Sᵀ with S (N, K) holding k trained values at fixed flat
// positions. The kernels are SparseDeltaKernel's forward/backward pair.
using System.Numerics.Tensors;
using InstructTune.Engine.Kernels;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Engine.Autograd;

public static partial class Ops
{
    /// <summary>
    /// z (…, N) = y (…, N) + x (…, K) · Sᵀ where S[index[j] / K, index[j] % K] = values[j] (values rank 1, length k).
    /// Backward: dy += dz; dx += dz·S; dvalues[j] += Σ_rows dz[·, r_j]·x[·, c_j]. index is not copied: keep it unchanged.
    /// </summary>
    public static Tensor AddSparseProduct(Tensor y, Tensor x, int[] index, Tensor values, int N, int K)
    {
        if (values.Rank != 1 || values.Length != index.Length)
            throw new ArgumentException($"AddSparseProduct: values {Tensor.ShapeString(values.Shape)} do not match {index.Length} indices");
        if (x.Size(-1) != K || y.Size(-1) != N || x.Length / K != y.Length / N)
            throw new ArgumentException($"AddSparseProduct: x {Tensor.ShapeString(x.Shape)} and y {Tensor.ShapeString(y.Shape)} do not fit a {N}×{K} delta");
        x = Contiguous(x); y = Contiguous(y);
        int M = x.Length / K;
        var z = Tensor.Empty(y.Shape);
        y.Span.CopyTo(z.Span);
        SparseDeltaKernel.Forward(x.Span, index, values.Span, z.Span, M, N, K);
        if (Tape.Needs(x, y, values))
            Tape.Add(z, () =>
            {
                var dz = z.Grad!.Span;
                if (y.RequiresGrad) { var g = y.EnsureGrad().Span; TensorPrimitives.Add(g, dz, g); }
                SparseDeltaKernel.Backward(x.Span, index, values.Span, dz,
                    x.RequiresGrad ? x.EnsureGrad().Span : Span<float>.Empty, values.RequiresGrad ? values.EnsureGrad().Span : Span<float>.Empty, M, N, K);
            });
        return z;
    }
}
