using InstructTune.Engine.Tensors;

namespace InstructTune.Training.Regularizers;

/// <summary>
/// Elastic weight consolidation (Kirkpatrick et al., 2017): λ/2·Σ F_i·(θ_i − θ*_i)², with F the diagonal of
/// the empirical Fisher information estimated on a reference set (the mean of squared per-batch gradients of
/// the loss at θ*). Weights that mattered for the reference task move less. Gradient: λ·F·(θ − θ*).
/// </summary>
public sealed class EwcRegularizer : IRegularizer
{
    private readonly IReadOnlyList<Parameter> _parameters;
    private readonly float[][] _anchor;
    public float[][] Fisher { get; }
    public double Lambda { get; }
    public float[][] Anchor => _anchor;

    /// <param name="anchor">θ* (null: the parameters' current values).</param>
    public EwcRegularizer(IReadOnlyList<Parameter> parameters, float[][] fisher, double lambda, float[][]? anchor = null)
    {
        _parameters = parameters;
        _anchor = anchor ?? parameters.Select(p => p.ToArray()).ToArray();
        Fisher = fisher;
        Lambda = lambda;
    }

    /// <summary>
    /// Estimates the diagonal Fisher at the current parameters: for each reference batch, <paramref name="backward"/>
    /// must leave that batch's loss gradient in the parameters' Grad; F = mean over batches of g².
    /// </summary>
    public static float[][] EstimateFisher(IReadOnlyList<Parameter> parameters, int batches, Action<int> backward)
    {
        var fisher = parameters.Select(p => new float[p.Length]).ToArray();
        for (int b = 0; b < batches; b++)
        {
            foreach (var p in parameters) p.ZeroGrad();
            backward(b);
            for (int i = 0; i < parameters.Count; i++)
            {
                var g = parameters[i].Grad is { } grad ? grad.Span : Span<float>.Empty;
                for (int j = 0; j < g.Length; j++) fisher[i][j] += g[j] * g[j] / batches;
            }
        }
        foreach (var p in parameters) p.ZeroGrad();
        return fisher;
    }

    public double AddToGradients()
    {
        double penalty = 0;
        float l = (float)Lambda;
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i].Span; var a = _anchor[i]; var f = Fisher[i]; var g = _parameters[i].EnsureGrad().Span;
            for (int j = 0; j < p.Length; j++)
            {
                float d = p[j] - a[j];
                penalty += (double)f[j] * d * d;
                g[j] += l * f[j] * d;
            }
        }
        return 0.5 * Lambda * penalty;
    }
}
