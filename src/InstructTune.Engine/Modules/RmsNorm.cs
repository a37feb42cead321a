// RMSNorm with a learned scale ("weight", initialised to ones), normalising in float32 like LlamaRMSNorm.
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Modules;

public sealed class RmsNorm : Module, IUnaryModule
{
    public Parameter Weight { get; }
    public float Eps { get; }

    public RmsNorm(int dim, float eps)
    {
        Eps = eps;
        Weight = RegisterParameter("weight", new Parameter(dim));
        Weight.Span.Fill(1f);
    }

    public Tensor Forward(Tensor x) => Ops.RmsNorm(x, Weight, Eps);
}
