using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Training.Losses;

/// <summary>
/// Learned uncertainty weighting of task losses (Kendall, Gal and Cipolla, 2018): with one learned log-variance
/// s_k per task, L = Σ_k exp(−s_k)·L_k + s_k, where L_k is task k's mean loss over the optimizer step. A task
/// whose loss stays high (noisy, hard) learns a larger s_k and weighs less; the + s_k term stops s_k growing
/// without bound. This op computes one micro-batch's share: Σ_k exp(−s_k)·(Σ_{n∈k} ce_n)/N_k, plus Σ_k s_k once
/// per step (on the micro-batch that passes <c>addRegularizer</c>), so the shares add up to L over the step.
/// </summary>
public static class UncertaintyWeighting
{
    /// <param name="losses">per-token losses (N), 0 where ignored</param>
    /// <param name="taskOfToken">task id of each token's target (N), −1 where ignored</param>
    /// <param name="logVars">s (K), trainable</param>
    /// <param name="stepTokensPerTask">N_k: counted tokens of task k across the whole optimizer step</param>
    public static Tensor Combine(Tensor losses, int[] taskOfToken, Parameter logVars, int[] stepTokensPerTask, bool addRegularizer)
    {
        int N = losses.Length, K = logVars.Length;
        if (taskOfToken.Length != N) throw new ArgumentException($"UncertaintyWeighting: {N} losses vs {taskOfToken.Length} task ids");
        var l = losses.Span;
        var s = logVars.Span;
        var perTask = new double[K];
        for (int n = 0; n < N; n++) if (taskOfToken[n] >= 0) perTask[taskOfToken[n]] += l[n];
        double value = 0;
        var coefficient = new float[K];   // exp(−s_k)/N_k
        for (int k = 0; k < K; k++)
        {
            if (stepTokensPerTask[k] == 0) continue;
            coefficient[k] = (float)(Math.Exp(-s[k]) / stepTokensPerTask[k]);
            value += coefficient[k] * perTask[k] + (addRegularizer ? s[k] : 0);
        }
        var output = Tensor.FromArray([(float)value], 1);
        if (Tape.Needs(losses, logVars, null))
            Tape.Add(output, () =>
            {
                float g = output.Grad!.Span[0];
                if (losses.RequiresGrad)
                {
                    var dl = losses.EnsureGrad().Span;
                    for (int n = 0; n < N; n++) if (taskOfToken[n] >= 0) dl[n] += g * coefficient[taskOfToken[n]];
                }
                if (logVars.RequiresGrad)
                {
                    var ds = logVars.EnsureGrad().Span;
                    for (int k = 0; k < K; k++)
                        if (stepTokensPerTask[k] > 0)
                            ds[k] += (float)(g * (-coefficient[k] * perTask[k] + (addRegularizer ? 1 : 0)));
                }
            });
        return output;
    }
}
