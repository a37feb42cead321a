using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Peft.Iasft;

/// <summary>
/// A linear layer with a sparse trained delta (IaSFT): y = x·(W + S)ᵀ + b computed as x·Wᵀ + b + x·Sᵀ, where S holds
/// the trained <see cref="Values"/> (k, starting at 0, so the layer starts as its base) at the fixed flat positions
/// <see cref="Index"/> (row·in + col, ascending) chosen by the Fisher. W stays frozen: only the k values get
/// gradients and AdamW moments, so the optimizer memory scales with k. Parameter names keep the wrapped layer's
/// (`weight`, `bias`) and add `iasft_values`. Mergeable: W[index] += values.
/// </summary>
public sealed class SparseDeltaLinear : Module, IUnaryModule, IMergeableLinear
{
    public Linear Base { get; }
    public int[] Index { get; }
    public Parameter Values { get; }
    public bool Enabled { get; set; } = true;
    public bool Merged { get; private set; }
    public int InFeatures => Base.InFeatures;
    public int OutFeatures => Base.OutFeatures;

    public SparseDeltaLinear(Linear baseLayer, int[] index)
    {
        long size = (long)baseLayer.OutFeatures * baseLayer.InFeatures;
        for (int j = 0; j < index.Length; j++)
            if (index[j] < 0 || index[j] >= size || (j > 0 && index[j] <= index[j - 1]))
                throw new ArgumentException($"sparse delta index {index[j]} (entry {j}) is outside the {baseLayer.OutFeatures}×{baseLayer.InFeatures} weight or not ascending");
        if (index.Length == 0) throw new ArgumentException("a sparse delta needs at least one entry");
        Base = baseLayer;
        Index = index;
        baseLayer.Weight.Frozen = true;
        if (baseLayer.Bias != null) baseLayer.Bias.Frozen = true;
        RegisterParameter("weight", baseLayer.Weight);
        if (baseLayer.Bias != null) RegisterParameter("bias", baseLayer.Bias); else RegisterAbsentParameter("bias");
        Values = RegisterParameter("iasft_values", new Parameter(index.Length));   // zeros: identity at init
    }

    public Tensor Forward(Tensor x)
    {
        var y = Base.Forward(x);                                                   // (…, out) = x·Wᵀ + b
        if (!Enabled || Merged) return y;
        return Ops.AddSparseProduct(y, x, Index, Values, OutFeatures, InFeatures);  // + x·Sᵀ
    }

    public void Merge() { if (!Merged) { Apply(+1); Merged = true; } }
    public void Unmerge() { if (Merged) { Apply(-1); Merged = false; } }

    private void Apply(float sign)
    {
        var w = Base.Weight.Span; var v = Values.Span;
        for (int j = 0; j < Index.Length; j++) w[Index[j]] += sign * v[j];
    }
}
