using InstructTune.Evaluation.Metrics;
using InstructTune.Models.Inference;
using InstructTune.Tokenizers;

namespace InstructTune.Evaluation.ModelBackends;

/// <summary>
/// <see cref="ILogProbScorer"/> over an <see cref="InferenceModel"/> (one forward pass per sequence through
/// <see cref="Scorer"/>), plus the response-only perplexity of reference answers that <c>itune eval model</c>
/// reports: log p(reference | formatted prompt), scored from the first reference token on (same split as eval run).
/// </summary>
public sealed class InferenceLogProbScorer(InferenceModel model) : ILogProbScorer
{
    public float[] NextTokenLogProbs(IReadOnlyList<int> ids) =>
        Array.ConvertAll(Scorer.Score(model, [ids.ToArray()])[0].NextTokenLogprobs, x => (float)x);

    /// <summary>Perplexity of each (prompt, reference) pair's reference tokens given the formatted prompt,
    /// token-weighted over all pairs, with the token split of <see cref="Run.ContinuationScorer"/> (the one definition
    /// <c>eval run</c> reports too: the prompt's trailing whitespace moves to the reference, prompt+reference encoded
    /// once, the reference's tokens are those after the prompt's own encoding).</summary>
    public PerplexityResult ReferencePerplexity(ITokenizer tokenizer, PromptFormatter formatter,
        IReadOnlyList<(string Prompt, string Reference)> pairs)
    {
        var scores = new Run.ContinuationScorer(model, tokenizer, formatter.AddSpecialTokens)
            .Score(pairs.Where(p => p.Reference.Length > 0).Select(p => (formatter.Format(p.Prompt), p.Reference)).ToList());
        double sum = scores.Sum(s => s.LogProb);
        long count = scores.Sum(s => (long)s.Tokens);
        if (count == 0) return new PerplexityResult(double.NaN, 0, double.NaN);
        return new PerplexityResult(sum / count, count, Math.Exp(-sum / count));
    }
}
