using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Peft.Qlora;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Peft.Lora;

/// <summary>
/// A LoRA-adapted linear layer: y = W·x + b + (B·(A·dropout(x)))·scale, with W frozen (float32, NF4 for
/// QLoRA, or bf16 with model.weight_storage: bfloat16) and A [r, in], B [out, r] trainable. Parameter names keep the wrapped layer's (`weight`, `bias`),
/// so checkpoints of the base still load by name, and add `lora_A.weight` / `lora_B.weight` — PEFT's names
/// without its adapter-name level. Merged: W already holds W + scale·B·A and the adapter path is skipped.
///
/// DoRA (UseDora, PEFT's DoraLinearLayer): a magnitude vector m (out), `lora_magnitude_vector`, initialised to the
/// row norms ‖W‖ (so the layer starts as the base), and
///   y = W·x + b + (g − 1) ⊙ (W·xd) + g ⊙ scale·B·A·xd,   g = m / ‖W + scale·B·A‖_row,   xd = dropout(x)
/// which without dropout is g ⊙ (W + scale·B·A)·x + b. The norm is recomputed from the current A, B every forward and
/// is a constant for backward (DoRA §4.3; PEFT detaches it), so A and B get gradients only through the B·A·x path.
/// </summary>
public sealed class LoraLinear : Module, IUnaryModule, IAdapterLayer
{
    private readonly Rng? _dropoutRng;
    /// <summary>The dropout RNG (shared by all layers of one injection), so checkpoints can keep its state.</summary>
    public Rng? DropoutRng => DropoutP > 0 ? _dropoutRng : null;

    public Linear? Base { get; }          // float32 base (LoRA)
    public IFrozenLinear? QuantizedBase { get; } // NF4 base (QLoRA) or bf16 base (model.weight_storage: bfloat16)
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
    /// <summary>DoRA's magnitude vector m (out), or null for plain LoRA.</summary>
    public Parameter? Magnitude { get; }
    private float[]? _mergedScale;   // g = m/‖W + sBA‖ at merge time, to undo a DoRA merge

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

    public LoraLinear(IFrozenLinear quantizedBase, LoraConfig config, Rng initRng, Rng? dropoutRng = null)
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
        if (config.UseDora) Magnitude = RegisterParameter("lora_magnitude_vector", new Parameter(outFeatures));
    }

    /// <summary>m ← ‖W + scale·B·A‖_row, PEFT's DoRA initialisation (with B = 0 the layer then equals its base).
    /// Called once the base weight is in place (constructors run before a checkpoint's weights may be loaded).</summary>
    public void InitMagnitude()
    {
        if (Magnitude == null) throw new InvalidOperationException("InitMagnitude: the layer is not DoRA");
        RowNorms(Magnitude.Span);
    }

    /// <summary>norms[o] = ‖W[o,:] + scale·(B·A)[o,:]‖₂ over the input dimension (PEFT's get_weight_norm, dim=1),
    /// accumulated in double.</summary>
    private void RowNorms(Span<float> norms)
    {
        var w = BaseWeight();
        // w (out, in) += scale · B (out, r) · A (r, in)
        Engine.Kernels.Gemm.Sgemm(false, false, OutFeatures, InFeatures, Rank, Scale, B.Weight.Span, Rank, A.Weight.Span, InFeatures, 1f, w, InFeatures);
        for (int o = 0; o < OutFeatures; o++)
        {
            double acc = 0;
            foreach (var v in w.AsSpan(o * InFeatures, InFeatures)) acc += (double)v * v;
            norms[o] = (float)Math.Sqrt(acc);
        }
    }

    private float[] BaseWeight() => Base != null ? Base.Weight.ToArray() : QuantizedBase!.Dequantize();

    private Tensor BaseForward(Tensor x, bool bias) =>
        Base != null ? Ops.Linear(x, Base.Weight, bias ? Base.Bias : null) : QuantizedBase!.Forward(x, bias);

    public Tensor Forward(Tensor x)
    {
        var y = Base != null ? Base.Forward(x) : QuantizedBase!.Forward(x);
        if (!Enabled || Merged) return y;
        var xd = DropoutP > 0 && Tape.IsRecording && _dropoutRng != null ? Ops.Dropout(x, DropoutP, _dropoutRng) : x;
        var delta = Ops.Scale(Ops.Linear(Ops.Linear(xd, A.Weight), B.Weight), Scale);   // (…, r) then (…, out)
        if (Magnitude == null) return Ops.Add(y, delta);

        // DoRA: y + (g − 1)⊙Wxd + g⊙delta, written as (y − Wxd) + g⊙(Wxd + delta); g = m/‖W + sBA‖ (norm constant).
        var norms = new float[OutFeatures];
        RowNorms(norms);
        var invNorm = Tensor.Empty([OutFeatures]);
        for (int o = 0; o < OutFeatures; o++) invNorm.Span[o] = 1f / norms[o];
        var g = Ops.Mul(Magnitude, invNorm);                          // (out)
        var wxd = BaseForward(xd, bias: false);                       // (…, out)
        return Ops.Add(Ops.Add(y, Ops.Scale(wxd, -1f)), Ops.MulColumns(Ops.Add(wxd, delta), g));
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

    /// <summary>The merged weight of this layer, (g ⊙_row) (W + scale·B·A) for DoRA, into w (out, in) holding W.</summary>
    public void MergeInto(Span<float> w)
    {
        var g = Magnitude == null ? null : MergeScale();
        // w (out, in) += scale · B (out, r) · A (r, in)
        Engine.Kernels.Gemm.Sgemm(false, false, OutFeatures, InFeatures, Rank, Scale,
            B.Weight.Span, Rank, A.Weight.Span, InFeatures, 1f, w, InFeatures);
        if (g != null)
            for (int o = 0; o < OutFeatures; o++)
                System.Numerics.Tensors.TensorPrimitives.Multiply(w.Slice(o * InFeatures, InFeatures), g[o], w.Slice(o * InFeatures, InFeatures));
    }

    private float[] MergeScale()
    {
        var g = new float[OutFeatures];
        RowNorms(g);
        for (int o = 0; o < OutFeatures; o++) g[o] = Magnitude!.Span[o] / g[o];
        return g;
    }

    private void AddDelta(float sign)
    {
        if (Base == null) throw new InvalidOperationException("LoRA over an NF4 base cannot be merged in place; dequantise first (itune merge does)");
        if (Magnitude != null)
        {
            var w = Base.Weight.Span;
            if (sign > 0) { _mergedScale = MergeScale(); MergeInto(w); return; }
            // Unmerge DoRA: W = W'/g − scale·B·A with the g used at merge time.
            for (int o = 0; o < OutFeatures; o++)
                System.Numerics.Tensors.TensorPrimitives.Multiply(w.Slice(o * InFeatures, InFeatures), 1f / _mergedScale![o], w.Slice(o * InFeatures, InFeatures));
        }
        // W (out, in) += sign·scale · B (out, r) · A (r, in)
        Engine.Kernels.Gemm.Sgemm(false, false, OutFeatures, InFeatures, Rank, sign * Scale,
            B.Weight.Span, Rank, A.Weight.Span, InFeatures, 1f, Base.Weight.Span, InFeatures);
    }
}
