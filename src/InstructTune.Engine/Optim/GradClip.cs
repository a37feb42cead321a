// Global-norm gradient clipping as torch.nn.utils.clip_grad_norm_: total = ‖(‖g₁‖, ‖g₂‖, …)‖₂;
// every gradient is multiplied by min(1, maxNorm / (total + 1e-6)). Returns the total norm before clipping.
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Optim;

public static class GradClip
{
    public static float ClipGlobalNorm(IEnumerable<Parameter> parameters, float maxNorm)
    {
        var withGrad = parameters.Where(p => p.Grad != null && !p.Frozen).ToList();
        double sq = 0;
        foreach (var p in withGrad)
        {
            sq += System.Numerics.Tensors.TensorPrimitives.SumOfSquares(p.Grad!.Span); // float32 per tensor, like torch.norm
        }
        float total = (float)Math.Sqrt(sq);
        float coef = Math.Min(1f, maxNorm / (total + 1e-6f));
        if (coef < 1f)
            foreach (var p in withGrad)
                System.Numerics.Tensors.TensorPrimitives.Multiply(p.Grad!.Span, coef, p.Grad.Span);
        return total;
    }

    /// <summary>Global L2 norm of the gradients (no clipping).</summary>
    public static float GlobalNorm(IEnumerable<Parameter> parameters) => ClipGlobalNorm(parameters, float.PositiveInfinity);
}
