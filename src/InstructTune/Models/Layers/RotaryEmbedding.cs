// Rotary position embedding tables for a Llama config: inverse frequencies (with linear or Llama-3 scaling)
// and, per batch, cos/sin rows for the given position ids. The rotation itself is Ops.Rope (rotate_half layout).
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;

namespace InstructTune.Models.Layers;

public sealed class RotaryEmbedding
{
    /// <summary>(headDim/2) inverse frequencies after scaling.</summary>
    public float[] InverseFrequencies { get; }
    public int HeadDim { get; }

    public RotaryEmbedding(LlamaConfig config)
    {
        HeadDim = config.HeadDim;
        InverseFrequencies = RopeKernel.InverseFrequencies(HeadDim, config.RopeTheta);
        switch (config.RopeScaling?.Type)
        {
            case null: break;
            case "linear": RopeKernel.ScaleLinear(InverseFrequencies, config.RopeScaling.Factor); break;
            case "llama3":
                var s = config.RopeScaling;
                RopeKernel.ScaleLlama3(InverseFrequencies, s.Factor, s.LowFreqFactor, s.HighFreqFactor, s.OriginalMaxPositionEmbeddings);
                break;
            default: throw new ArgumentException($"rope_scaling type '{config.RopeScaling.Type}' is not supported (linear, llama3)");
        }
    }

    /// <summary>cos, sin of shape (N, headDim/2) for N position ids (constants for autograd).</summary>
    public (Tensor Cos, Tensor Sin) Tables(ReadOnlySpan<int> positions)
    {
        int h = HeadDim / 2;
        var cos = Tensor.Empty([positions.Length, h]);
        var sin = Tensor.Empty([positions.Length, h]);
        RopeKernel.CosSin(positions, InverseFrequencies, cos.Span, sin.Span);
        return (cos, sin);
    }
}
