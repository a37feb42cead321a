using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Models.InstructionAware;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Peft.Ipeft;

/// <summary>
/// iPEFT's gating head: per decoder layer l a weight w_l (1, hidden) and bias b_l (1), both 0 at init, giving per
/// token g_l = tanh(r·w_lᵀ + b_l) from the instruction representation r (B·T, hidden) = the causal instruction mean of
/// the base's token embeddings (<see cref="InstructionSpans.CausalMean"/>; 0 where no instruction token precedes).
/// Computed once per forward (<see cref="Prepare"/>), read by every <see cref="IpeftLinear"/>.
/// </summary>
public sealed class IpeftGate : Module, IInstructionConditioner
{
    private readonly Parameter[] _w, _b;
    private Tensor[]? _gates;
    public int Layers => _w.Length;

    public IpeftGate(int layers, int hidden)
    {
        _w = new Parameter[layers]; _b = new Parameter[layers];
        for (int l = 0; l < layers; l++)
        {
            _w[l] = RegisterParameter($"weight_{l}", new Parameter(1, hidden));   // zeros: gates start at 0
            _b[l] = RegisterParameter($"bias_{l}", new Parameter(1));
        }
    }

    public Parameter Weight(int l) => _w[l];
    public Parameter Bias(int l) => _b[l];

    public void Prepare(Tensor embeddings, InstructionSpans? spans)
    {
        var r = spans != null ? spans.CausalMean(embeddings) : Tensor.Zeros(embeddings.Shape);   // (B·T, hidden)
        int N = r.Size(0);
        _gates = new Tensor[_w.Length];
        for (int l = 0; l < _w.Length; l++)
            _gates[l] = Ops.Reshape(Ops.Tanh(Ops.Linear(r, _w[l], _b[l])), N);              // (B·T)
    }

    /// <summary>Layer l's gate per token of the current forward, or null before any forward.</summary>
    public Tensor? Gate(int l) => _gates?[l];
}

/// <summary>
/// A projection with a gated low-rank adapter: y = W·x + b + g_l ⊙_rows (scale·B·A·x). Parameter names keep the base's
/// (`weight`, `bias`) and add `ipeft_A.weight` (r, in), `ipeft_B.weight` (out, r). Not mergeable (the gate depends on
/// the instruction).
/// </summary>
public sealed class IpeftLinear : Module, IUnaryModule, IAdapterLayer
{
    public Linear Base { get; }
    public Linear A { get; }
    public Linear B { get; }
    public IpeftGate GateHead { get; }
    public int Layer { get; }
    public float Scale { get; }
    public bool Enabled { get; set; } = true;

    public IpeftLinear(Linear baseLayer, IpeftGate gate, int layer, int rank, float scale, Rng rng)
    {
        Base = baseLayer; GateHead = gate; Layer = layer; Scale = scale;
        baseLayer.Weight.Frozen = true;
        if (baseLayer.Bias != null) baseLayer.Bias.Frozen = true;
        RegisterParameter("weight", baseLayer.Weight);
        if (baseLayer.Bias != null) RegisterParameter("bias", baseLayer.Bias); else RegisterAbsentParameter("bias");
        A = RegisterModule("ipeft_A", new Linear(baseLayer.InFeatures, rank));
        B = RegisterModule("ipeft_B", new Linear(rank, baseLayer.OutFeatures));
        // U(−1/√fan_in, 1/√fan_in) for both (torch's kaiming_uniform with a = √5): B is not 0, the gate is.
        TorchInit.LinearDefault(A, rng);
        TorchInit.LinearDefault(B, rng);
    }

    public Tensor Forward(Tensor x)
    {
        var y = Base.Forward(x);                                          // (N, out)
        if (!Enabled || GateHead.Gate(Layer) is not { } g) return y;
        var d = Ops.Scale(B.Forward(A.Forward(x)), Scale);                // (N, out) = scale·B·A·x
        return Ops.Add(y, Ops.MulRows(d, g));                             // + g_l[row]·delta
    }
}
