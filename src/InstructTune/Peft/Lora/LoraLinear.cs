using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Peft.Qlora;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Peft.Lora;

/// <summary>
/// A LoRA-adapted linear layer: y = W·x + b + (B·(A·dropout(x)))·scale, with W frozen (float32, or NF4 for
/// QLoRA) and A [r, in], B [out, r] trainable. Parameter names keep the wrapped layer's (`weight`, `bias`),
/// so checkpoints of the base still load by name, and add `lora_A.weight` / `lora_B.weight` — PEFT's names
/// without its adapter-name level. Merged: W already holds W + scale·B·A and the adapter path is skipped.
/// </summary>
public sealed class LoraLinear : Module, IUnaryModule
{
    private readonly Rng? _dropoutRng;
    /// <summary>The dropout RNG (shared by all layers of one injection), so checkpoints can keep its state.</summary>
    public Rng? DropoutRng => DropoutP > 0 ? _dropoutRng : null;

    public Linear? Base { get; }          // float32 base (LoRA)
    public Nf4Linear? QuantizedBase { get; } // NF4 base (QLoRA)
    public Linear A { get; }
    public Linear B { get; }
    public float Scale { get; }
    public float DropoutP { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public int Rank => A.OutFeatures;
    /// <summary>When false the layer computes the base alone (PEFT's disable_adapter).</summary>
    public bool Enabled { get; set; } = true;
    public bool Merged { get; private set; }

    public LoraLinear(Linear baseLayer, LoraConfig config, Rng initRng, Rng? dropoutRng = null)
        : this(baseLayer.InFeatures, baseLayer.OutFeatures, config, initRng, dropoutRng)
    {
        Base = baseLayer;
        baseLayer.Weight.Frozen = true;
        if (baseLayer.Bias != null) baseLayer.Bias.Frozen = true;
        RegisterParameter("weight", baseLayer.Weight);
        if (baseLayer.Bias != null) RegisterParameter("bias", baseLayer.Bias); else RegisterAbsentParameter("bias");
        _dropoutRng = dropoutRng;
    }

    public LoraLinear(Nf4Linear quantizedBase, LoraConfig config, Rng initRng, Rng? dropoutRng = null)
        : this(quantizedBase.InFeatures, quantizedBase.OutFeatures, config, initRng, dropoutRng)
    {
        QuantizedBase = quantizedBase;
        if (quantizedBase.Bias != null) RegisterParameter("bias", quantizedBase.Bias); else RegisterAbsentParameter("bias");
        _dropoutRng = dropoutRng;
    }

    private LoraLinear(int inFeatures, int outFeatures, LoraConfig config, Rng initRng, Rng? dropoutRng)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Scale = config.Scale;
        DropoutP = (float)config.Dropout;
        A = RegisterModule("lora_A", new Linear(inFeatures, config.Rank));
        B = RegisterModule("lora_B", new Linear(config.Rank, outFeatures));
        // PEFT's default init: A ~ kaiming_uniform(a=√5) = U(−1/√in, 1/√in); B = 0, so the adapter starts as a no-op.
        float bound = 1f / MathF.Sqrt(inFeatures);
        initRng.Uniform(A.Weight.Span, -bound, bound);
        B.Weight.Span.Clear();
        _ = dropoutRng;
    }

    public Tensor Forward(Tensor x)
    {
        var y = Base != null ? Base.Forward(x) : QuantizedBase!.Forward(x);
        if (!Enabled || Merged) return y;
        var xd = DropoutP > 0 && Tape.IsRecording && _dropoutRng != null ? Ops.Dropout(x, DropoutP, _dropoutRng) : x;
        var delta = Ops.Linear(Ops.Linear(xd, A.Weight), B.Weight);   // (…, r) then (…, out)
        return Ops.Add(y, Ops.Scale(delta, Scale));
    }

    /// <summary>W += scale·B·A (float32 base only). The adapter path is then skipped until Unmerge.</summary>
    public void Merge()
    {
        if (Merged) return;
        AddDelta(+1f);
        Merged = true;
    }

    /// <summary>W −= scale·B·A: restores the base weights (up to float32 rounding).</summary>
    public void Unmerge()
    {
        if (!Merged) return;
        AddDelta(-1f);
        Merged = false;
    }

    private void AddDelta(float sign)
    {
        if (Base == null) throw new InvalidOperationException("LoRA over an NF4 base cannot be merged in place; dequantise first (itune merge does)");
        // W (out, in) += sign·scale · B (out, r) · A (r, in)
        Engine.Kernels.Gemm.Sgemm(false, false, OutFeatures, InFeatures, Rank, sign * Scale,
            B.Weight.Span, Rank, A.Weight.Span, InFeatures, 1f, Base.Weight.Span, InFeatures);
    }
}
