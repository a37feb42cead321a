// The temperature head at inference (`itune generate --temperature auto`): the prompt runs once through the model,
// its final hidden states (after the final RMSNorm) are averaged over the instruction tokens (the training side's
// spans.Pooled at the prompt's last token), and the head gives τ = clamp(softplus(w·p + b), min, max)
// (Models/InstructionAware/TemperatureHead.cs).
using InstructTune.Models.InstructionAware;

namespace InstructTune.Models.Inference;

public sealed partial class InferenceModel
{
    /// <summary>Whether a temperature head is attached (instruction_aware.temperature_head).</summary>
    public bool HasTemperatureHead => InstructionAware?.Heads.ContainsKey(TemperatureHead.Name) == true;

    /// <summary>The temperature the head predicts for a prompt; segments per token (null: the whole prompt is
    /// instruction, as BatchDecoder counts a prompt without segments). Throws when the model has no head.</summary>
    public float PredictTemperature(int[] prompt, byte[]? segments = null)
    {
        var ia = InstructionAware is { } w && HasTemperatureHead ? w
            : throw new InvalidDataException("the model has no temperature head (train it with model.instruction_aware.temperature_targets)");
        if (prompt.Length == 0) throw new ArgumentException("PredictTemperature: empty prompt");
        segments ??= Enumerable.Repeat((byte)InstructionSpans.Instruction, prompt.Length).ToArray();
        int D = Config.HiddenSize, N = prompt.Length;
        var (X, _) = Hidden([new SequenceChunk(CreateCache(N), prompt, AllLogits: true, Segments: segments)]);
        var pooled = new float[D];
        int count = 0;
        var row = new float[D];
        for (int n = 0; n < N; n++)
        {
            if (segments[n] != InstructionSpans.Instruction) continue;
            Engine.Kernels.RmsNormKernel.Forward(X.AsSpan(n * D, D), FinalNorm, row, new float[1], 1, D, (float)Config.RmsNormEps);
            System.Numerics.Tensors.TensorPrimitives.Add(pooled, row, pooled);
            count++;
        }
        if (count > 0) System.Numerics.Tensors.TensorPrimitives.Divide(pooled, count, pooled);
        return ia.Temperature(pooled);
    }
}
