using InstructTune.Engine.Tensors;

namespace InstructTune.Training.Regularizers;

/// <summary>
/// L2-SP (Li, Grandvalet and Davoine, 2018): λ/2·Σ (θ − θ₀)², pulling fine-tuned weights toward the
/// starting point θ₀ instead of toward zero. Gradient: λ·(θ − θ₀). θ₀ is the parameters' values now, or the given
/// <paramref name="anchor"/> (continual.l2_previous_lambda: the previous stage's final weights).
/// </summary>
public sealed class L2SpRegularizer(IReadOnlyList<Parameter> parameters, double lambda, float[][]? anchor = null) : IRegularizer
{
    private readonly float[][] _anchor = anchor ?? parameters.Select(p => p.ToArray()).ToArray();

    public double AddToGradients()
    {
        double penalty = 0;
        float l = (float)lambda;
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i].Span; var a = _anchor[i]; var g = parameters[i].EnsureGrad().Span;
            for (int j = 0; j < p.Length; j++)
            {
                float d = p[j] - a[j];
                penalty += (double)d * d;
                g[j] += l * d;
            }
        }
        return 0.5 * lambda * penalty;
    }
}
