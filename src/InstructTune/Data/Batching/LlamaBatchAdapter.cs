using InstructTune.Engine.Tensors;
using InstructTune.Models;

namespace InstructTune.Data.Batching;

/// <summary>Hands a <see cref="Batch"/> to <see cref="LlamaModel.Forward"/>: same (B, T) layout, same label convention.</summary>
public static class LlamaBatchAdapter
{
    /// <summary>
    /// ids, labels and position ids as they are; attention mask 1 where a document token sits, 0 on padding;
    /// document ids only when some row really holds several documents (otherwise the plain causal mask suffices).
    /// </summary>
    public static LlamaBatch ToLlamaBatch(this Batch b)
    {
        bool packed = b.ExampleIndices.Any(r => r.Length > 1);
        var valid = new int[b.DocumentIds.Length];
        for (int i = 0; i < valid.Length; i++) valid[i] = b.DocumentIds[i] >= 0 ? 1 : 0;
        return new LlamaBatch(new IntTensor(b.Ids, b.B, b.T))
        {
            Labels = new IntTensor(b.Labels, b.B, b.T),
            PositionIds = new IntTensor(b.PositionIds, b.B, b.T),
            AttentionMask = new IntTensor(valid, b.B, b.T),
            DocumentIds = packed ? new IntTensor(b.DocumentIds, b.B, b.T) : null,
            Segments = b.SegmentTensor(),
        };
    }

    /// <summary>The batch's per-token segments (B, T) as the model takes them (<see cref="LlamaBatch.Segments"/>).</summary>
    public static IntTensor SegmentTensor(this Batch b)
    {
        var s = new int[b.Segments.Length];
        for (int i = 0; i < s.Length; i++) s[i] = b.Segments[i];
        return new IntTensor(s, b.B, b.T);
    }
}
