// Scoring: log p(token t+1 | tokens ≤ t) for each position, the mean negative log-likelihood, and optionally
// all logits. Several sequences run in one forward step; padded batches (left or right padding, attention mask,
// optional position ids) are reduced to their real tokens, so pads never influence a result.
namespace InstructTune.Models.Inference;

/// <summary>Result for one sequence: Logits is [T, V] row-major when asked for.</summary>
public sealed record ScoreResult(int[] Ids, double[] NextTokenLogprobs, double? Loss, float[]? Logits);

public static class Scorer
{
    /// <param name="segments">Per sequence, its tokens' segments for instruction-aware models (null = none known).</param>
    public static ScoreResult[] Score(InferenceModel model, IReadOnlyList<int[]> sequences, bool keepLogits = false,
        IReadOnlyList<int[]>? positions = null, IReadOnlyList<byte[]?>? segments = null)
    {
        int V = model.Config.VocabSize;
        var results = new ScoreResult[sequences.Count];
        // Group sequences so one step's activations stay bounded (~4k tokens).
        int start = 0;
        while (start < sequences.Count)
        {
            int end = start, tokens = 0;
            while (end < sequences.Count && (end == start || tokens + sequences[end].Length <= 4096)) tokens += sequences[end++].Length;
            var chunks = new List<SequenceChunk>();
            for (int i = start; i < end; i++)
            {
                if (sequences[i].Length == 0) throw new ArgumentException($"sequence {i} is empty");
                chunks.Add(new SequenceChunk(model.CreateCache(sequences[i].Length), sequences[i], positions?[i], AllLogits: true, Segments: segments?[i]));
            }
            var logits = model.Forward(chunks);
            long row = 0;
            var lsm = new double[V];
            for (int i = start; i < end; i++)
            {
                var ids = sequences[i];
                int T = ids.Length;
                var lp = new double[T - 1];
                for (int t = 0; t < T - 1; t++)
                {
                    InstructTune.Engine.Kernels.SoftmaxKernel.LogSoftmaxRow(logits.AsSpan((int)((row + t) * V), V), lsm);
                    lp[t] = lsm[ids[t + 1]];
                }
                double? loss = T > 1 ? -lp.Average() : null;
                results[i] = new ScoreResult(ids, lp, loss, keepLogits ? logits.AsSpan((int)(row * V), T * V).ToArray() : null);
                row += T;
            }
            start = end;
        }
        return results;
    }

    /// <summary>Scores a padded batch [B, T]: tokens with mask 0 are dropped; positions default to
    /// cumsum(mask) − 1 as Hugging Face derives them. Results cover the real tokens only.</summary>
    public static ScoreResult[] ScorePadded(InferenceModel model, int[][] inputIds, int[][] attentionMask,
        int[][]? positionIds = null, bool keepLogits = false)
    {
        var seqs = new List<int[]>();
        var pos = new List<int[]>();
        for (int b = 0; b < inputIds.Length; b++)
        {
            if (attentionMask[b].Length != inputIds[b].Length)
                throw new ArgumentException($"row {b}: attention mask length {attentionMask[b].Length} ≠ ids length {inputIds[b].Length}");
            var ids = new List<int>(); var p = new List<int>();
            int seen = 0;
            for (int t = 0; t < inputIds[b].Length; t++)
            {
                if (attentionMask[b][t] == 0) continue;
                ids.Add(inputIds[b][t]);
                p.Add(positionIds?[b][t] ?? seen);
                seen++;
            }
            seqs.Add([.. ids]); pos.Add([.. p]);
        }
        return Score(model, seqs, keepLogits, pos);
    }
}
