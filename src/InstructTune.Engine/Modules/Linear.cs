// y = x·Wᵀ + b with W (out, in) as Hugging Face stores it ("weight"), optional b (out) ("bias").
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Modules;

public sealed class Linear : Module, IUnaryModule
{
    public Parameter Weight { get; }
    public Parameter? Bias { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }

    public Linear(int inFeatures, int outFeatures, bool bias = false)
    {
        InFeatures = inFeatures; OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", new Parameter(outFeatures, inFeatures));
        if (bias) Bias = RegisterParameter("bias", new Parameter(outFeatures));
    }

    /// <summary>A Linear whose weight is an existing parameter (tied lm_head shares embed_tokens.weight).</summary>
    public Linear(Parameter sharedWeight)
    {
        if (sharedWeight.Rank != 2) throw new ArgumentException($"Linear: shared weight must be 2-D, got {Tensor.ShapeString(sharedWeight.Shape)}");
        OutFeatures = sharedWeight.Size(0); InFeatures = sharedWeight.Size(1);
        Weight = RegisterParameter("weight", sharedWeight);
    }

    /// <summary>x (…, in) → (…, out).</summary>
    public Tensor Forward(Tensor x) => Ops.Linear(x, Weight, Bias);
}
