using InstructTune.Models.Inference;
using InstructTune.Tokenizers;

namespace InstructTune.Evaluation.Run;

/// <summary>Log-likelihood of a continuation given a context: the sum over its tokens, their count, and whether
/// every one of them is the greedy (argmax) choice.</summary>
public readonly record struct ContinuationScore(double LogProb, int Tokens)
{
    /// <summary>exp(−LogProb / Tokens): the perplexity of this continuation alone (NaN with no tokens).</summary>
    public double Perplexity => Tokens > 0 ? Math.Exp(-LogProb / Tokens) : double.NaN;
}

/// <summary>
/// Scores continuations the way lm-evaluation-harness's <c>loglikelihood</c> does: whitespace at the end of the
/// context is moved to the front of the continuation; the whole text is encoded once and the continuation's tokens
/// are those after the context's own encoding (so a token that straddles the boundary counts for the continuation, and
/// the tokens scored are exactly those the model would see); the sum of log p(token | everything before) over them.
/// Sequences longer than max_position_embeddings keep their last tokens. This is the reference perplexity of
/// <c>itune eval run</c> and its log-likelihood multiple choice (sum, and the sum divided by the option's characters
/// for the length-normalised choice).
/// </summary>
public sealed class ContinuationScorer(InferenceModel model, ITokenizer tokenizer, bool addSpecialTokens)
{
    /// <summary>The token ids of context + continuation and the index of the continuation's first token.</summary>
    /// <param name="cut">true: a pair longer than the model's context loses its oldest tokens; false: it is kept
    /// whole (<c>itune score</c> refuses it, naming the line).</param>
    public (int[] Ids, int ContinuationStart) Encode(string context, string continuation, bool cut = true)
    {
        int spaces = context.Length - context.TrimEnd().Length;
        if (spaces > 0)
        {
            continuation = context[^spaces..] + continuation;
            context = context[..^spaces];
        }
        var whole = tokenizer.Encode(context + continuation, addSpecialTokens).Ids;
        int ctx = tokenizer.Encode(context, addSpecialTokens).Ids.Length;
        if (ctx == 0 && whole.Length > 0)
        {
            // Nothing to condition the first token on: use BOS when there is one, else the first token is context.
            if (tokenizer.BosId is int bos) { whole = [bos, .. whole]; ctx = 1; }
            else ctx = 1;
        }
        ctx = Math.Min(ctx, whole.Length);
        int max = model.Config.MaxPositionEmbeddings;
        if (cut && whole.Length > max)
        {
            int drop = whole.Length - max;
            whole = whole[drop..];
            ctx = Math.Max(1, ctx - drop);
        }
        return (whole, ctx);
    }

    /// <summary>Scores several (context, continuation) pairs in batched forward passes.</summary>
    /// <param name="segmentsOf">(pair index, its encoded ids) → the ids' segments for instruction-aware models (null:
    /// none known, as before); without them a segment-reading model scores every token as the wrong segment.</param>
    public ContinuationScore[] Score(IReadOnlyList<(string Context, string Continuation)> pairs, Func<int, int[], byte[]?>? segmentsOf = null)
    {
        var encoded = pairs.Select(p => Encode(p.Context, p.Continuation)).ToList();
        var segments = segmentsOf is null ? null : encoded.Select((e, i) => segmentsOf(i, e.Ids)).ToList();
        var scored = Scorer.Score(model, encoded.Select(e => e.Ids).ToList(), segments: segments);
        var results = new ContinuationScore[pairs.Count];
        for (int i = 0; i < pairs.Count; i++)
        {
            var lp = scored[i].NextTokenLogprobs; // lp[t] = log p(ids[t+1] | ids[..t])
            double sum = 0;
            int n = 0;
            for (int t = encoded[i].ContinuationStart - 1; t < lp.Length; t++) { sum += lp[t]; n++; }
            results[i] = new ContinuationScore(sum, n);
        }
        return results;
    }
}
