// A set of parameters sharing optimizer settings (e.g. matrices with weight decay, norms and biases without).
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Optim;

public sealed class ParamGroup(IEnumerable<Parameter> parameters, float weightDecay)
{
    public IReadOnlyList<Parameter> Parameters { get; } = parameters.ToList();
    public float WeightDecay { get; set; } = weightDecay;
    /// <summary>Multiplies the optimizer's learning rate for this group (1 = same).</summary>
    public float LrScale { get; set; } = 1f;

    /// <summary>The usual split: decay on tensors of rank ≥ 2 (matrices, embeddings), none on norms and biases.</summary>
    public static ParamGroup[] DecayMatricesOnly(IEnumerable<Parameter> parameters, float weightDecay)
    {
        var list = parameters.ToList();
        return [new ParamGroup(list.Where(p => p.Rank >= 2), weightDecay), new ParamGroup(list.Where(p => p.Rank < 2), 0f)];
    }
}
