// AdamW exactly as torch.optim.AdamW (torch 1.13, single-tensor path), operation for operation in float32:
//   p ← p·(1 − lr·wd)                       (decoupled decay)
//   m ← m·β1 + g·(1−β1);  v ← v·β2 + (1−β2)·g·g
//   p ← p + (−lr/(1−β1ᵗ))·m / (√v / √(1−β2ᵗ) + eps)
// Frozen parameters and parameters without a gradient are skipped (their step count does not advance).
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Optim;

public sealed unsafe class AdamW
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

    /// <summary>When set, <see cref="Step"/> updates only the parameters it accepts (ZeRO-1: this rank's shard), so
    /// the others never get moments here.</summary>
    public Predicate<Parameter>? Owns { get; set; }

    /// <summary>Forgets a parameter's moments (ZeRO-1: state gathered for a checkpoint, or loaded, that another rank owns).</summary>
    public void DropState(Parameter p) => state.Remove(p);

    /// <summary>Values of moments held, for memory reports.</summary>
    public long StateValues => state.Values.Sum(s => 2L * s.M.Length);

    public void Step()
    {
        foreach (var g in Groups)
            foreach (var p in g.Parameters)
            {
                if (p.Frozen || p.Grad == null || (Owns != null && !Owns(p))) continue;
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
        int n = param.Length;
        fixed (float* pp = param, pg = grad, pm = s.M, pv = s.V)
        {
            float* P = pp, G = pg, M = pm, V = pv;
            // Elementwise and identical in every lane, so the vector body and the scalar tail give the same
            // bits as torch's float32 kernels (same operations, same order).
            Kernels.Parallel2.For((n + 4095) / 4096, 4096L * 12, (c0, c1) =>
            {
                int start = c0 * 4096, end = Math.Min(n, c1 * 4096), i = start;
                if (Fma.IsSupported)
                {
                    var vDecay = Vector256.Create(decay); var vB1 = Vector256.Create(beta1); var vOneB1 = Vector256.Create(oneMinusB1);
                    var vB2 = Vector256.Create(beta2); var vOneB2 = Vector256.Create(oneMinusB2); var vBc2 = Vector256.Create(bc2Sqrt);
                    var vEps = Vector256.Create(eps); var vStep = Vector256.Create(negStepSize);
                    for (; i + 8 <= end; i += 8)
                    {
                        var g = Avx.LoadVector256(G + i);
                        var p = Avx.Multiply(Avx.LoadVector256(P + i), vDecay);
                        var m = Fma.MultiplyAdd(g, vOneB1, Avx.Multiply(Avx.LoadVector256(M + i), vB1));
                        var v = Avx.Add(Avx.Multiply(Avx.LoadVector256(V + i), vB2), Avx.Multiply(Avx.Multiply(vOneB2, g), g));
                        var denom = Avx.Add(Avx.Divide(Avx.Sqrt(v), vBc2), vEps);
                        Avx.Store(M + i, m); Avx.Store(V + i, v);
                        Avx.Store(P + i, Avx.Add(p, Avx.Divide(Avx.Multiply(vStep, m), denom)));
                    }
                }
                for (; i < end; i++)
                {
                    float gi = G[i];
                    float p = P[i] * decay;
                    M[i] = MathF.FusedMultiplyAdd(gi, oneMinusB1, M[i] * beta1);   // exp_avg.mul_(β1).add_(g, alpha=1−β1): fmadd
                    V[i] = V[i] * beta2 + oneMinusB2 * gi * gi;                     // exp_avg_sq.mul_(β2).addcmul_(g, g, value=1−β2)
                    float denom = MathF.Sqrt(V[i]) / bc2Sqrt + eps;                 // (√v / √bc2).add_(eps)
                    P[i] = p + negStepSize * M[i] / denom;                           // addcdiv_(m, denom, value=−step_size)
                }
            });
        }
    }
}
