// Autoregressive generation for a batch of prompts. Each prompt has its own KV cache, so prompts of different
// lengths need no padding inside the model (a left-padded batch is first reduced to its real tokens); every
// step decodes one token for each unfinished sequence in a single forward pass.
using InstructTune.Models.Inference;

namespace InstructTune.Generation;

public sealed record GenerationResult(int[] PromptIds, int[] GeneratedIds, string StopReason);

public static class Generator
{
    public static GenerationResult[] Generate(InferenceModel model, IReadOnlyList<int[]> prompts, GenerationOptions o)
    {
        o.Validate();
        int B = prompts.Count, V = model.Config.VocabSize, maxPos = model.Config.MaxPositionEmbeddings;
        for (int b = 0; b < B; b++)
        {
            if (prompts[b].Length == 0) throw new ArgumentException($"prompt {b} is empty");
            if (prompts[b].Length > maxPos)
                throw new ArgumentException($"prompt {b} has {prompts[b].Length} tokens, more than max_position_embeddings={maxPos}");
        }
        var rngs = Enumerable.Range(0, B).Select(b => new Random(o.Seed + b)).ToArray();
        var generated = prompts.Select(_ => new List<int>()).ToArray();
        var reason = new string?[B];
        var caches = new KvCache[B];
        for (int b = 0; b < B; b++)
            caches[b] = model.CreateCache(Math.Min(maxPos, prompts[b].Length + o.MaxNewTokens));

        // Step 0 feeds the prompts (prefill); later steps feed the last token of each unfinished sequence.
        var active = Enumerable.Range(0, B).ToList();
        for (int step = 0; step < o.MaxNewTokens && active.Count > 0; step++)
        {
            var live = new List<int>();
            foreach (int b in active)
            {
                if (prompts[b].Length + generated[b].Count >= maxPos) reason[b] = "max_position_embeddings";
                else live.Add(b);
            }
            active = live;
            if (active.Count == 0) break;
            var chunks = active.Select(b =>
            {
                if (!o.UseCache) { caches[b].Clear(); return new SequenceChunk(caches[b], [.. prompts[b], .. generated[b]]); }
                return step == 0 ? new SequenceChunk(caches[b], prompts[b]) : new SequenceChunk(caches[b], [generated[b][^1]]);
            }).ToList();
            var logits = model.Forward(chunks);
            var next = new List<int>();
            for (int i = 0; i < active.Count; i++)
            {
                int b = active[i];
                var row = logits.AsSpan(i * V, V);
                LogitsSampler.ApplyRepetitionPenalty(row, prompts[b].Concat(generated[b]), o.RepetitionPenalty);
                int tok = LogitsSampler.Sample(row, o.Temperature, o.TopK, o.TopP, rngs[b]);
                generated[b].Add(tok);
                o.OnToken?.Invoke(b, tok);
                if (o.StopTokenIds.Contains(tok)) reason[b] = "stop_token";
                else if (o.StopStrings.Count > 0 && o.StopStrings.Any(o.Decode!(generated[b]).Contains)) reason[b] = "stop_string";
                else next.Add(b);
            }
            active = next;
        }
        return Enumerable.Range(0, B).Select(b => new GenerationResult(prompts[b], [.. generated[b]], reason[b] ?? "max_new_tokens")).ToArray();
    }

    /// <summary>Reduces a left-padded batch [B, T] with its attention mask to the real prompt tokens.</summary>
    public static int[][] StripPadding(int[][] inputIds, int[][] attentionMask) =>
        inputIds.Select((row, b) => row.Where((_, t) => attentionMask[b][t] != 0).ToArray()).ToArray();
}
