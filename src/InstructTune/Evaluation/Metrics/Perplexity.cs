namespace InstructTune.Evaluation.Metrics;

/// <summary>
/// What perplexity needs from a model: for a token sequence ids[0..T), the natural-log probability the model gives
/// to each next token, i.e. log p(ids[t+1] | ids[..t]) for t = 0..T-2 (length T−1). The model engineer's Llama
/// wraps its forward pass in this; tests use a fixed distribution.
/// </summary>
public interface ILogProbScorer
{
    /// <summary>(T) ids → (T−1) next-token log-probabilities, each ≤ 0.</summary>
    float[] NextTokenLogProbs(IReadOnlyList<int> ids);
}

/// <summary>Mean log-likelihood, total token count and perplexity = exp(−mean log-likelihood).</summary>
public readonly record struct PerplexityResult(double MeanLogLikelihood, long Tokens, double Perplexity);

/// <summary>
/// Perplexity over several sequences, token-weighted (every predicted token counts once, as in the usual corpus
/// perplexity), optionally scoring only the positions from <c>scoreFrom</c> on (e.g. only the response after a
/// prompt). Accumulates in double so long corpora do not lose precision.
/// </summary>
public static class Perplexity
{
    public static PerplexityResult Compute(ILogProbScorer scorer, IEnumerable<IReadOnlyList<int>> sequences,
        Func<int, int>? scoreFrom = null)
    {
        double sum = 0;
        long count = 0;
        int index = 0;
        foreach (var ids in sequences)
        {
            var lp = scorer.NextTokenLogProbs(ids);
            if (lp.Length != Math.Max(ids.Count - 1, 0))
                throw new InvalidOperationException(
                    $"sequence {index}: scorer returned {lp.Length} log-probs for {ids.Count} ids (expected {ids.Count - 1})");
            // lp[t] predicts ids[t+1]; a prompt of length P leaves the targets ids[P..], i.e. lp[P-1..].
            int first = Math.Max((scoreFrom?.Invoke(index) ?? 1) - 1, 0);
            for (int t = first; t < lp.Length; t++)
            {
                if (float.IsNaN(lp[t]) || lp[t] > 1e-6f)
                    throw new InvalidOperationException($"sequence {index}, position {t}: invalid log-prob {lp[t]}");
                sum += lp[t];
                count++;
            }
            index++;
        }
        if (count == 0) return new PerplexityResult(double.NaN, 0, double.NaN);
        double mean = sum / count;
        return new PerplexityResult(mean, count, Math.Exp(-mean));
    }
}
