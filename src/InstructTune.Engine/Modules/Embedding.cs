// Token embedding table (vocab, dim) ("weight").
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Modules;

public sealed class Embedding : Module
{
    public Parameter Weight { get; }

    public Embedding(int vocab, int dim) => Weight = RegisterParameter("weight", new Parameter(vocab, dim));

    /// <summary>ids (any shape) → ids.Shape + [dim].</summary>
    public Tensor Forward(IntTensor ids) => Ops.Embedding(Weight, ids);
}
