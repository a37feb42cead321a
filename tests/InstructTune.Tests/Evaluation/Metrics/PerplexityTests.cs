using InstructTune.Evaluation.Metrics;

namespace InstructTune.Tests.Evaluation.Metrics;

public class PerplexityTests
{
    // A "model" that is uniform over a vocabulary of V: every next-token log-prob is −ln V, so perplexity = V.
    private sealed class Uniform(int vocab) : ILogProbScorer
    {
        public float[] NextTokenLogProbs(IReadOnlyList<int> ids) =>
            Enumerable.Repeat((float)-Math.Log(vocab), Math.Max(ids.Count - 1, 0)).ToArray();
    }

    // Gives log(0.5) to even targets, log(0.25) to odd ones: hand-computable means.
    private sealed class ParityScorer : ILogProbScorer
    {
        public float[] NextTokenLogProbs(IReadOnlyList<int> ids) =>
            ids.Skip(1).Select(t => (float)Math.Log(t % 2 == 0 ? 0.5 : 0.25)).ToArray();
    }

    [Fact]
    public void UniformModelHasPerplexityV()
    {
        var r = Perplexity.Compute(new Uniform(50), [[1, 2, 3, 4], [5, 6]]);
        Assert.Equal(4, r.Tokens);
        Assert.Equal(50, r.Perplexity, 1e-3);
    }

    [Fact]
    public void TokenWeightedAndPromptMasked()
    {
        // targets 2,4,5 → ln .5, ln .5, ln .25 → mean = (2 ln .5 + ln .25)/3 = ln .5 · 4/3.
        var all = Perplexity.Compute(new ParityScorer(), [[1, 2, 4, 5]]);
        Assert.Equal(Math.Log(0.5) * 4 / 3, all.MeanLogLikelihood, 1e-6);
        // Only the response from position 3 on (target 5): mean = ln .25, perplexity 4.
        var resp = Perplexity.Compute(new ParityScorer(), [[1, 2, 4, 5]], _ => 3);
        Assert.Equal(1, resp.Tokens);
        Assert.Equal(4, resp.Perplexity, 1e-5);
    }

    [Fact]
    public void WrongLengthFromScorerIsAnError() =>
        Assert.Throws<InvalidOperationException>(() =>
            Perplexity.Compute(new DelegateScorer(ids => new float[ids.Count]), [[1, 2, 3]]));

    private sealed class DelegateScorer(Func<IReadOnlyList<int>, float[]> f) : ILogProbScorer
    {
        public float[] NextTokenLogProbs(IReadOnlyList<int> ids) => f(ids);
    }
}
