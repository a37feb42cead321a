using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Peft.Ia3;

/// <summary>
/// An IA3-adapted linear layer (Liu et al., 2022; PEFT's ia3.Linear): a learned vector l, initialised to 1, scales
/// either the output, y = (W·x + b) ⊙ l (bias scaled too, as PEFT), or — for a feedforward module — the input,
/// y = W·(x ⊙ l) + b. Only l trains. Parameter names keep the wrapped layer's (`weight`, `bias`) and add `ia3_l`
/// (PEFT's name without its adapter level). Mergeable: W ← W·diag(l) (input) or diag(l)·W, b ← b ⊙ l (output).
/// </summary>
public sealed class Ia3Linear : Module, IUnaryModule, IMergeableLinear
{
    public Linear Base { get; }
    public Parameter L { get; }
    public bool IsFeedforward { get; }
    public bool Enabled { get; set; } = true;
    public bool Merged { get; private set; }
    public int InFeatures => Base.InFeatures;
    public int OutFeatures => Base.OutFeatures;

    public Ia3Linear(Linear baseLayer, bool feedforward)
    {
        Base = baseLayer;
        IsFeedforward = feedforward;
        baseLayer.Weight.Frozen = true;
        if (baseLayer.Bias != null) baseLayer.Bias.Frozen = true;
        RegisterParameter("weight", baseLayer.Weight);
        if (baseLayer.Bias != null) RegisterParameter("bias", baseLayer.Bias); else RegisterAbsentParameter("bias");
        L = RegisterParameter("ia3_l", new Parameter(feedforward ? baseLayer.InFeatures : baseLayer.OutFeatures));
        L.Span.Fill(1f);   // PEFT's init_ia3_weights: ones, so the layer starts as its base
    }

    public Tensor Forward(Tensor x)
    {
        if (!Enabled || Merged) return Base.Forward(x);
        return IsFeedforward
            ? Base.Forward(Ops.MulColumns(x, L))       // (…, in) ⊙ l, then W·x + b
            : Ops.MulColumns(Base.Forward(x), L);      // (W·x + b) ⊙ l
    }

    public void Merge()
    {
        if (Merged) return;
        Apply(L.ToArray());
        Merged = true;
    }

    /// <summary>Divides l back out (exact up to rounding; PEFT's unmerge adds 1e-8 to l, we refuse a zero).</summary>
    public void Unmerge()
    {
        if (!Merged) return;
        var inv = L.ToArray();
        for (int i = 0; i < inv.Length; i++)
            inv[i] = inv[i] != 0 ? 1f / inv[i] : throw new InvalidOperationException("IA3 unmerge: a zero entry of ia3_l cannot be divided out");
        Apply(inv);
        Merged = false;
    }

    private void Apply(float[] l)
    {
        var w = Base.Weight.Span;
        int I = InFeatures, O = OutFeatures;
        if (IsFeedforward)
            for (int o = 0; o < O; o++) System.Numerics.Tensors.TensorPrimitives.Multiply(w.Slice(o * I, I), l, w.Slice(o * I, I));
        else
        {
            for (int o = 0; o < O; o++) System.Numerics.Tensors.TensorPrimitives.Multiply(w.Slice(o * I, I), l[o], w.Slice(o * I, I));
            if (Base.Bias != null) System.Numerics.Tensors.TensorPrimitives.Multiply(Base.Bias.Span, l, Base.Bias.Span);
        }
    }
}
