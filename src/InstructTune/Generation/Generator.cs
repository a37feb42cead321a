// Autoregressive generation for a batch of prompts: the BatchDecoder run until every sequence finishes. Each
// prompt has its own KV cache, so prompts of different lengths need no padding inside the model (a left-padded
// batch is first reduced to its real tokens); every step decodes one token for each unfinished sequence in a
// single forward pass.
using InstructTune.Models.Inference;

namespace InstructTune.Generation;

public sealed record GenerationResult(int[] PromptIds, int[] GeneratedIds, string StopReason);

public static class Generator
{
    /// <param name="segments">Per prompt, its tokens' segments for instruction-aware models (null = none known).</param>
    public static GenerationResult[] Generate(InferenceModel model, IReadOnlyList<int[]> prompts, GenerationOptions o,
        IReadOnlyList<byte[]?>? segments = null)
    {
        o.Validate();
        int maxPos = model.RealPositions;
        for (int b = 0; b < prompts.Count; b++)
        {
            if (prompts[b].Length == 0) throw new ArgumentException($"prompt {b} is empty");
            if (prompts[b].Length > maxPos)
                throw new ArgumentException(model.VirtualTokens == 0
                    ? $"prompt {b} has {prompts[b].Length} tokens, more than max_position_embeddings={maxPos}"
                    : $"prompt {b} has {prompts[b].Length} tokens; with the adapter's {model.VirtualTokens} virtual tokens that is more than max_position_embeddings={model.Config.MaxPositionEmbeddings}");
        }
        var decoder = new BatchDecoder(model);
        var sequences = prompts.Select((p, b) => decoder.Add(p, o, seed: o.Seed + b, tag: b, promptSegments: segments?[b])).ToArray();
        while (decoder.Count > 0)
            foreach (var t in decoder.Step()) o.OnToken?.Invoke((int)t.Sequence.Tag!, t.Token);
        return sequences.Select(s => s.ToResult()).ToArray();
    }

    /// <summary>Reduces a left-padded batch [B, T] with its attention mask to the real prompt tokens.</summary>
    public static int[][] StripPadding(int[][] inputIds, int[][] attentionMask) =>
        inputIds.Select((row, b) => row.Where((_, t) => attentionMask[b][t] != 0).ToArray()).ToArray();
}
