// Chain-of-thought pathways (model.instruction_aware.cot_width = r), seed 001's parallel reasoning pathways: three
// parallel linear + activation paths over the final hidden states (after the last decoder layer, before the final
// RMSNorm), concatenated and projected back, residual:
//
//   a_k = act_k(h W_kᵀ + b_k),  k = 1, 2, 3;  act = SiLU, GELU (erf), tanh                       (N, r) each
//   h   ← h + [a_1; a_2; a_3] W_oᵀ = h + Σ_k a_k W_o,kᵀ                                          (N, D)
//
//   instruction_aware.cot.path{1,2,3}.weight (r, D) ~ N(0, 0.02) (seeded), .bias (r) zero
//   instruction_aware.cot.out_{1,2,3}.weight (D, r) zero: W_o = [W_o,1 | W_o,2 | W_o,3] stored by path
//
// W_o starts at zero, so the model starts as the base model exactly; W_o learns first (its gradient is a_k·dh) and
// then the paths. Per token, so the KV cache needs nothing (InferenceForward applies it to the fed rows).
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;

namespace InstructTune.Models.InstructionAware;

public sealed class CotPathways : Module
{
    public const string Name = "cot";
    public const int Paths = 3;
    public int Width { get; }
    public LinearHead[] In { get; } = new LinearHead[Paths];
    public Parameter[] Out { get; } = new Parameter[Paths];

    public CotPathways(int hidden, int width, ulong seed)
    {
        Width = width;
        var rng = new Rng(seed ^ 0xC07C07C07UL);
        for (int k = 0; k < Paths; k++)
        {
            In[k] = RegisterModule($"path{k + 1}", new LinearHead(width, hidden));
            rng.Normal(In[k].Weight.Span, 0f, 0.02f);
            Out[k] = RegisterModule($"out_{k + 1}", new WeightHolder(hidden, width)).Weight;
        }
    }

    /// <summary>The activation of path k (0-based): SiLU, GELU, tanh.</summary>
    public static Tensor Activation(int k, Tensor z) => k switch { 0 => Ops.Silu(z), 1 => Ops.Gelu(z), _ => Ops.Tanh(z) };

    /// <summary>h (N, D) → h + Σ_k act_k(h W_kᵀ + b_k) W_o,kᵀ.</summary>
    public Tensor Forward(Tensor h)
    {
        Tensor? sum = null;
        for (int k = 0; k < Paths; k++)
        {
            var y = Ops.Linear(Activation(k, In[k].Forward(h)), Out[k]);   // (N, D)
            sum = sum == null ? y : Ops.Add(sum, y);
        }
        return Ops.Add(h, sum!);
    }

    private sealed class WeightHolder : Module
    {
        public Parameter Weight { get; }
        public WeightHolder(int outputs, int inputs) => Weight = RegisterParameter("weight", new Parameter(outputs, inputs));
    }
}
