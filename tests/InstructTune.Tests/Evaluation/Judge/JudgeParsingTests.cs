using InstructTune.Evaluation;
using InstructTune.Evaluation.Judge;

namespace InstructTune.Tests.Evaluation.Judge;

public class JudgeParsingTests
{
    [Theory]
    [InlineData("{\"score\": 7, \"reason\": \"ok\"}", 7.0)]
    [InlineData("```json\n{\"score\": \"8\"}\n```", 8.0)]
    [InlineData("Reasoning first... {\"rating\": 4.5}", 4.5)]
    [InlineData("Score: 7/10", 7.0)]
    [InlineData("The response is good. Final score: 9", 9.0)]
    [InlineData("I'd give it 3 out of 10.", 3.0)]
    [InlineData("Rating: [[6]]", 6.0)]
    [InlineData("Score: 4/5", 1 + 0.8 * 9)]
    [InlineData("Step 1/3 was fine, step 2/3 too. Score: 8/10", 8.0)]
    [InlineData("IRS = 10", 10.0)]
    public void ScoresAreReadFromJsonLabelsAndProse(string text, double expected) =>
        Assert.Equal(expected, JudgeAnswerParser.ParseScore(text)!.Value, 1e-9);

    [Theory]
    [InlineData("")]
    [InlineData("I cannot judge this.")]
    [InlineData("Score: 42")]
    [InlineData("{\"score\": 0}")]
    [InlineData("Score: 11/10")]
    public void NoUsableScoreIsNull(string text) => Assert.Null(JudgeAnswerParser.ParseScore(text));

    [Theory]
    [InlineData("{\"winner\": \"B\"}", PairwiseWinner.B)]
    [InlineData("After comparing, [[A]]", PairwiseWinner.A)]
    [InlineData("Winner: tie", PairwiseWinner.Tie)]
    [InlineData("Overall, Response B is better.", PairwiseWinner.B)]
    public void WinnersAreRead(string text, PairwiseWinner expected) => Assert.Equal(expected, JudgeAnswerParser.ParseWinner(text));

    [Fact]
    public void NoWinnerIsNull() => Assert.Null(JudgeAnswerParser.ParseWinner("both have merits"));

    [Fact]
    public void EnvironmentFillsEndpointAndKeyButToStringHidesTheKey()
    {
        var env = new Dictionary<string, string> { ["OPENAI_BASE_URL"] = "http://localhost:8000/v1", ["OPENAI_API_KEY"] = "sk-abc" };
        var c = new JudgeConfig().WithEnvironment(k => env.GetValueOrDefault(k));
        Assert.Equal("http://localhost:8000/v1", c.BaseUrl);
        Assert.Equal("sk-abc", c.ApiKey);
        Assert.DoesNotContain("sk-abc", c.ToString());
        // An explicit config value wins over the environment.
        Assert.Equal("http://x/v1", new JudgeConfig { BaseUrl = "http://x/v1" }.WithEnvironment(k => env.GetValueOrDefault(k)).BaseUrl);
    }

    [Fact]
    public async Task LocalGeneratorAsJudgeAndBothOrderPairwise()
    {
        // A deterministic "local model": prefers whichever response is shown first → position bias.
        var biased = new DelegateTextGenerator(p => p.Contains("RESPONSE A") ? "{\"winner\": \"A\"}" : "Score: 5/10");
        var judge = new LlmJudge(new GeneratorJudgeBackend(biased, "local-fake"), new JudgeConfig { MaxAttempts = 1 });
        var irs = await judge.JudgeIrsAsync([new IrsItem("i", "do x", "did x")]);
        Assert.Equal(5, irs[0].Score);
        var pair = await judge.JudgePairwiseBothOrdersAsync([new PairwiseItem("p", "do x", "one", "two")]);
        Assert.Equal(PairwiseWinner.Tie, pair[0].Winner);   // A in both orders = inconsistent → tie
        var single = await judge.JudgePairwiseAsync([new PairwiseItem("p", "do x", "one", "two")]);
        Assert.Equal(PairwiseWinner.A, single[0].Winner);
    }
}

public class JudgeCacheTests
{
    [Fact]
    public async Task TornLinesAreSkippedAndAnUnwritableCacheDoesNotLoseJudgements()
    {
        var dir = Directory.CreateTempSubdirectory("itune-judge-cache-");
        try
        {
            var path = Path.Combine(dir.FullName, "cache.jsonl");
            int calls = 0;
            var gen = new DelegateTextGenerator(_ => { Interlocked.Increment(ref calls); return "Score: 6"; });
            var config = new JudgeConfig { MaxAttempts = 1, CachePath = path };
            await new LlmJudge(new GeneratorJudgeBackend(gen, "g"), config).JudgeIrsAsync([new IrsItem("a", "x", "y")]);
            File.AppendAllText(path, "{\"Key\": \"torn");   // an interrupted write
            var again = await new LlmJudge(new GeneratorJudgeBackend(gen, "g"), config).JudgeIrsAsync([new IrsItem("a", "x", "y")]);
            Assert.True(again[0].FromCache);
            Assert.Equal(1, calls);

            // Hold the cache file exclusively: judgements are still made, and the log says why nothing was cached.
            var log = new List<string>();
            var judge = new LlmJudge(new GeneratorJudgeBackend(gen, "g"), config, log.Add);
            using (new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            {
                var r = await judge.JudgeIrsAsync([new IrsItem("b", "x", "z")]);
                Assert.Equal(6, r[0].Score);
            }
            Assert.Contains(log, l => l.Contains("could not write the cache"));
        }
        finally { dir.Delete(true); }
    }
}
