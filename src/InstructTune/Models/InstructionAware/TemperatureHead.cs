// The dynamic temperature head (model.instruction_aware.temperature_targets): a sampling temperature predicted from
// the pooled instruction representation p_d (the final hidden states after the final RMSNorm, averaged over
// document d's instruction tokens: spans.Pooled, as the dual head reads it).
//
//   instruction_aware.temperature_head.weight (1, D) zero, .bias (1) = softplus⁻¹(τ_0)   τ_0 = (min + max) / 2
//   τ_d = softplus(w·p_d + b)                      (positive; at init every instruction gets τ_0)
//   L_temp = Σ_{d with a target} (τ_d − τ*_d)² / (documents with a target in the step)
//   L = L_objective + μ·L_temp                    (μ = model.instruction_aware.temperature_weight)
// τ*_d is the target of d's task (temperature_targets: {task: τ}); documents of other tasks add nothing. Training
// fits the unclamped softplus (a clamp would stop the gradient outside the range); `generate --temperature auto`
// uses clamp(τ, temperature_min, temperature_max). The head reads the model and changes no logit, so the model with
// the head attached is exactly the base model.
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;

namespace InstructTune.Models.InstructionAware;

public static class TemperatureHead
{
    public const string Name = "temperature_head";
    /// <summary>Safetensors metadata keys of instruction_aware.safetensors holding the clamp range.</summary>
    public const string MinKey = "temperature_min", MaxKey = "temperature_max";

    /// <summary>softplus⁻¹(τ) = log(e^τ − 1): the bias that makes an empty instruction predict τ.</summary>
    public static float InverseSoftplus(double tau) => (float)(tau > 20 ? tau : Math.Log(Math.Exp(tau) - 1));

    /// <summary>A new head: weight (1, D) zero, bias softplus⁻¹((min + max) / 2).</summary>
    public static LinearHead Create(int hidden, (float Min, float Max) range)
    {
        var h = new LinearHead(1, hidden);
        h.Bias.Span[0] = InverseSoftplus((range.Min + range.Max) / 2.0);
        return h;
    }

    /// <summary>τ_d (documents) = softplus(head(p_d)) from hidden (B·T, D).</summary>
    public static Tensor Predict(LinearHead head, Tensor hidden, InstructionSpans spans) =>
        Ops.Softplus(Ops.Reshape(head.Forward(spans.Pooled(hidden)), spans.LastRow.Length));

    /// <summary>Σ over documents whose task has a target (targets by task id, NaN = none) of (τ_d − τ*_d)², and how
    /// many such documents there were.</summary>
    public static (Tensor Sum, int Count) LossSum(LinearHead head, Tensor hidden, InstructionSpans spans, ReadOnlySpan<int> taskIds, float[] targets)
    {
        var (task, _) = InstructionHeads.Documents(spans, taskIds);
        int n = task.Length, count = 0;
        var negTarget = new float[n];
        var mask = new float[n];
        for (int d = 0; d < n; d++)
            if (Target(targets, task[d]) is { } t) { negTarget[d] = -t; mask[d] = 1; count++; }
        var diff = Ops.Add(Predict(head, hidden, spans), Tensor.FromArray(negTarget, n));   // τ − τ*
        return (Ops.Sum(Ops.Mul(Ops.Mul(diff, diff), Tensor.FromArray(mask, n))), count);
    }

    /// <summary>The target temperature of task k, or null (no target, or no task).</summary>
    public static float? Target(float[] targets, int k) => k >= 0 && k < targets.Length && !float.IsNaN(targets[k]) ? targets[k] : null;

    /// <summary>The inference side: τ = clamp(softplus(w·p + b), min, max) for a pooled representation p (D).</summary>
    public static float Temperature(ReadOnlySpan<float> w, float b, ReadOnlySpan<float> p, (float Min, float Max) range)
    {
        double z = System.Numerics.Tensors.TensorPrimitives.Dot(w, p) + b;
        double tau = z > 20 ? z : Math.Log(1 + Math.Exp(z));
        return (float)Math.Clamp(tau, range.Min, range.Max);
    }
}
