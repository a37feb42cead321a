using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Models.Inference;

namespace InstructTune.Tests.Evaluation.ModelBackends;

/// <summary>Perplexity from the model equals exp(−mean log-prob) summed by hand from <see cref="Scorer"/> output.</summary>
public class InferenceLogProbScorerTests
{
    private static readonly (string Prompt, string Reference)[] Pairs =
    [
        ("What is the capital of France?", "The capital is Paris."),
        ("Write the word hello in all capital letters.", "HELLO"),
        ("List 3 primary colours.", "- red\n- blue\n- yellow"),
    ];

    [Fact]
    public void NextTokenLogProbsAreScorersAndPerplexityIsExpOfMinusTheirMean()
    {
        using var loaded = LoadedModel.Load(TinyEvalModel.Path);
        var scorer = new InferenceLogProbScorer(loaded.Model);
        var seqs = Pairs.Select(p => loaded.Tokenizer.Encode(p.Prompt + " " + p.Reference, addSpecialTokens: true).Ids).ToList();
        double sum = 0; int n = 0;
        foreach (var ids in seqs)
        {
            var lp = Scorer.Score(loaded.Model, [ids])[0].NextTokenLogprobs;
            var mine = scorer.NextTokenLogProbs(ids);
            Assert.Equal(ids.Length - 1, mine.Length);
            for (int t = 0; t < lp.Length; t++) Assert.Equal(lp[t], mine[t], 5);
            sum += lp.Sum(); n += lp.Length;
        }
        var result = Perplexity.Compute(scorer, seqs);
        Assert.Equal(n, result.Tokens);
        Assert.Equal(sum / n, result.MeanLogLikelihood, 4);
        Assert.Equal(Math.Exp(-sum / n), result.Perplexity, 1e-4 * Math.Exp(-sum / n));
        // A random model over 320 tokens is close to uniform: perplexity well above 1 and of the order of the vocabulary.
        Assert.InRange(result.Perplexity, 50, 2000);
    }

    [Fact]
    public void ReferencePerplexityScoresOnlyTheReferenceTokens()
    {
        using var loaded = LoadedModel.Load(TinyEvalModel.Path);
        var tok = loaded.Tokenizer;
        var formatter = PromptFormatter.Create("alpaca", TinyEvalModel.Path);
        double sum = 0; int n = 0;
        foreach (var (prompt, reference) in Pairs)
        {
            string promptText = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
                                + $"### Instruction:\n{prompt}\n\n### Response:\n";
            // lm-evaluation-harness's split: the prompt's trailing "\n" moves to the reference; the whole text is
            // encoded once and the reference's tokens are those after the (trimmed) prompt's own encoding.
            var p = tok.Encode(promptText.TrimEnd(), addSpecialTokens: true).Ids;
            var whole = tok.Encode(promptText + reference, addSpecialTokens: true).Ids;
            var lp = Scorer.Score(loaded.Model, [whole])[0].NextTokenLogprobs;
            // lp[t] is log p(ids[t+1] | ids[..t]): the reference tokens are whole[p.Length..], predicted by lp[p.Length-1..].
            for (int t = p.Length - 1; t < lp.Length; t++) { sum += lp[t]; n++; }
            Assert.True(whole.Length > p.Length);
        }
        var result = new InferenceLogProbScorer(loaded.Model).ReferencePerplexity(tok, formatter, Pairs);
        Assert.Equal(n, result.Tokens);
        Assert.Equal(Math.Exp(-sum / n), result.Perplexity, 1e-4 * Math.Exp(-sum / n));
    }
}
