using InstructTune.Evaluation.Metrics;
using InstructTune.Models.Inference;
using InstructTune.Tokenizers;

namespace InstructTune.Evaluation.ModelBackends;

/// <summary>
/// <see cref="ILogProbScorer"/> over an <see cref="InferenceModel"/> (one forward pass per sequence through
/// <see cref="Scorer"/>), plus the response-only perplexity of reference answers that <c>itune eval model</c>
/// reports: log p(reference | formatted prompt), scored from the first reference token on.
/// </summary>
public sealed class InferenceLogProbScorer(InferenceModel model) : ILogProbScorer
{
    public float[] NextTokenLogProbs(IReadOnlyList<int> ids) =>
        Array.ConvertAll(Scorer.Score(model, [ids.ToArray()])[0].NextTokenLogprobs, x => (float)x);

    /// <summary>Perplexity of each (prompt, reference) pair's reference tokens given the formatted prompt,
    /// token-weighted over all pairs. Prompt and reference are encoded separately, so the boundary is exact.</summary>
    public PerplexityResult ReferencePerplexity(ITokenizer tokenizer, PromptFormatter formatter,
        IReadOnlyList<(string Prompt, string Reference)> pairs)
    {
        var sequences = new List<IReadOnlyList<int>>();
        var promptLengths = new List<int>();
        int maxPos = model.Config.MaxPositionEmbeddings;
        foreach (var (prompt, reference) in pairs)
        {
            var p = tokenizer.Encode(formatter.Format(prompt), formatter.AddSpecialTokens).Ids;
            var r = tokenizer.Encode(reference).Ids;
            if (p.Length == 0 || r.Length == 0 || p.Length + r.Length > maxPos) continue;
            sequences.Add([.. p, .. r]);
            promptLengths.Add(p.Length);
        }
        return Perplexity.Compute(this, sequences, i => promptLengths[i]);
    }
}
