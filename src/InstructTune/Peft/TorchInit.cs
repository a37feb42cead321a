// torch.nn.Linear's default initialisation (kaiming_uniform with a = √5 on the weight, the same bound on the bias):
// U(−1/√fan_in, 1/√fan_in), weight first, then the bias. One place for the PEFT modules that start from it
// (prefix-tuning and IAPT/HINT generators, the iPEFT/HINT low-rank pairs), so the draw order stays the goldens'.
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;

namespace InstructTune.Peft;

internal static class TorchInit
{
    /// <summary>Fills <paramref name="lin"/>'s weight, then its bias if it has one, from U(−1/√in, 1/√in).</summary>
    public static void LinearDefault(Linear lin, Rng rng)
    {
        float bound = 1f / MathF.Sqrt(lin.InFeatures);
        rng.Uniform(lin.Weight.Span, -bound, bound);
        if (lin.Bias != null) rng.Uniform(lin.Bias.Span, -bound, bound);
    }
}
