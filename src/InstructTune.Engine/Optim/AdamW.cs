// AdamW exactly as torch.optim.AdamW (torch 1.13, single-tensor path), operation for operation in float32:
//   p ← p·(1 − lr·wd)                       (decoupled decay)
//   m ← m·β1 + g·(1−β1);  v ← v·β2 + (1−β2)·g·g
//   p ← p + (−lr/(1−β1ᵗ))·m / (√v / √(1−β2ᵗ) + eps)
// Frozen parameters and parameters without a gradient are skipped (their step count does not advance).
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Optim;

public sealed class AdamW
{
    public sealed class State(int length)
    {
        public int Step;
        public readonly float[] M = new float[length];
        public readonly float[] V = new float[length];
    }

    private readonly Dictionary<Parameter, State> state = new(ReferenceEqualityComparer.Instance);

    public IReadOnlyList<ParamGroup> Groups { get; }
    public float LearningRate { get; set; }
    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Eps { get; }

    public AdamW(IEnumerable<ParamGroup> groups, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f)
    {
        Groups = groups.ToList(); LearningRate = lr; Beta1 = beta1; Beta2 = beta2; Eps = eps;
    }

    public AdamW(IEnumerable<Parameter> parameters, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0.01f)
        : this([new ParamGroup(parameters, weightDecay)], lr, beta1, beta2, eps) { }

    /// <summary>Moments and step count of a parameter (created on its first step), for checkpoints.</summary>
    public State GetState(Parameter p) => state.TryGetValue(p, out var s) ? s : state[p] = new State(p.Length);

    public void Step()
    {
        foreach (var g in Groups)
            foreach (var p in g.Parameters)
            {
                if (p.Frozen || p.Grad == null) continue;
                Update(p.Span, p.Grad.Span, GetState(p), LearningRate * g.LrScale, g.WeightDecay);
            }
    }

    private void Update(Span<float> param, ReadOnlySpan<float> grad, State s, float lr, float wd)
    {
        s.Step++;
        // Scalars as torch forms them: Python doubles, rounded to float where a float32 kernel consumes them.
        double lrD = lr, b1 = Beta1, b2 = Beta2;
        float decay = (float)(1 - lrD * wd);
        float oneMinusB1 = (float)(1 - b1), oneMinusB2 = (float)(1 - b2);
        double bc1 = 1 - Math.Pow(b1, s.Step), bc2 = 1 - Math.Pow(b2, s.Step);
        float negStepSize = (float)-(lrD / bc1);
        float bc2Sqrt = (float)Math.Sqrt(bc2);
        float beta1 = Beta1, beta2 = Beta2, eps = Eps;
        var m = s.M.AsSpan(); var v = s.V.AsSpan();
        for (int i = 0; i < param.Length; i++)
        {
            float gi = grad[i];
            float p = param[i] * decay;
            m[i] = MathF.FusedMultiplyAdd(gi, oneMinusB1, m[i] * beta1);   // exp_avg.mul_(β1).add_(g, alpha=1−β1): fmadd
            v[i] = v[i] * beta2 + oneMinusB2 * gi * gi;                     // exp_avg_sq.mul_(β2).addcmul_(g, g, value=1−β2)
            float denom = MathF.Sqrt(v[i]) / bc2Sqrt + eps;
            param[i] = p + negStepSize * m[i] / denom;                       // addcdiv_(m, denom, value=−step_size)
        }
    }
}
