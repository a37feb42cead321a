// eval.generation_samples: at each evaluation of a run (eval.every_steps), the first N held-out examples' prompts are
// continued greedily by the model being trained (adapters and all, no dropout, no gradients) and written with their
// reference answers to run_dir/generations/step_NNNNNN.jsonl — the "does it answer yet" look that TRL's
// LogCompletionsCallback and Axolotl's eval_table give. The prompt is each example's tokens before its first learned
// token (exactly what training conditioned on); the reference is that first learned run of tokens (the response and
// its end of turn). Greedy decoding recomputes the whole sequence each token (the training model keeps no KV cache),
// so the length is bounded: twice the reference's tokens, at least 16 and at most 256, within the model's positions;
// it stops at the config's EOS ids.
using System.Text.Json;
using InstructTune.Data.Records;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Models;

namespace InstructTune.Training.Loop;

public static class HeldOutGenerations
{
    /// <summary>One held-out generation: the example's index in the held-out set, texts and the generated ids.</summary>
    public sealed record Sample(int Index, string Prompt, string Reference, string Generation, int[] PromptIds, int[] GeneratedIds, string StopReason);

    public static IReadOnlyList<Sample> Generate(LlamaModel model, IReadOnlyList<TokenizedExample> heldOut, int count, Func<int[], string> decode)
    {
        var samples = new List<Sample>();
        int maxPos = model.Config.MaxPositionEmbeddings;
        var eos = model.Config.EosTokenIds.ToHashSet();
        for (int k = 0; k < heldOut.Count && samples.Count < count; k++)
        {
            var ex = heldOut[k];
            int start = Array.FindIndex(ex.Labels, l => l != TokenizedExample.IgnoreIndex);
            if (start <= 0) continue;   // nothing learned, or nothing to condition on
            int end = start;
            while (end < ex.Labels.Length && ex.Labels[end] != TokenizedExample.IgnoreIndex) end++;
            var prompt = ex.Ids[..start];
            int budget = Math.Min(Math.Clamp(2 * (end - start), 16, 256), (maxPos > 0 ? maxPos : int.MaxValue) - start);
            var ids = new List<int>(prompt);
            bool withSegments = ex.Segments.Length == ex.Ids.Length;
            var segments = new List<int>(ex.Segments.Take(start).Select(s => (int)s));
            string stop = "length";
            for (int n = 0; n < budget; n++)
            {
                int T = ids.Count;
                var batch = new LlamaBatch(new IntTensor(ids.ToArray(), 1, T)) { Segments = withSegments ? new IntTensor(segments.ToArray(), 1, T) : null };
                int next = 0;
                using (Tape.Record(recordGrad: false))
                {
                    var logits = model.Forward(batch).Logits!;   // (T, V)
                    int V = logits.Length / T;
                    var last = logits.Span.Slice((T - 1) * V, V);
                    for (int v = 1; v < V; v++) if (last[v] > last[next]) next = v;
                }
                ids.Add(next);
                segments.Add((int)Data.Templating.Segment.Response);
                if (eos.Contains(next)) { stop = "eos"; break; }
            }
            var generated = ids.Skip(start).ToArray();
            samples.Add(new Sample(k, decode(prompt), decode(ex.Ids[start..end]), decode(generated), prompt, generated, stop));
        }
        return samples;
    }

    /// <summary>Writes run_dir/generations/step_NNNNNN.jsonl atomically: one line per sample.</summary>
    public static string Write(string runDir, int step, IReadOnlyList<Sample> samples)
    {
        var dir = Path.Combine(runDir, "generations");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, $"step_{step:D6}.jsonl");
        Common.OutputFile.WriteAllText(path, string.Concat(samples.Select(s => JsonSerializer.Serialize(new
        {
            step, index = s.Index, prompt = s.Prompt, reference = s.Reference, generation = s.Generation,
            prompt_ids = s.PromptIds, generated_ids = s.GeneratedIds, stop_reason = s.StopReason,
        }) + "\n")));
        return path;
    }
}
