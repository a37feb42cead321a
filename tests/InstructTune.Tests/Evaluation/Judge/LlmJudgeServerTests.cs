using System.Diagnostics;
using InstructTune.Evaluation.Judge;

namespace InstructTune.Tests.Evaluation.Judge;

/// <summary>The judge against a local OpenAI-compatible server that answers, fails, rate-limits, hangs and
/// returns garbage: every judgement ends made or reported failed, requests and time stay bounded.</summary>
public class LlmJudgeServerTests
{
    private const string Secret = "sk-test-SECRET-never-log-me";

    private static JudgeConfig Config(FakeOpenAiServer server, string? cache = null) => new()
    {
        BaseUrl = server.BaseUrl, Model = "judge-test", ApiKey = Secret, MaxAttempts = 3,
        AttemptTimeout = TimeSpan.FromSeconds(2), BaseDelay = TimeSpan.FromMilliseconds(50), MaxConcurrency = 4,
        MaxRetryAfter = TimeSpan.FromSeconds(5), CachePath = cache,
    };

    private static IrsItem Item(string c) => new(c, "Summarise the text in under 20 words.", $"A short summary. [[case:{c}]]");

    [Fact]
    public async Task EveryJudgementIsMadeOrReportedFailed()
    {
        using var server = new FakeOpenAiServer();
        var cache = Path.Combine(Path.GetTempPath(), $"itune-judge-cache-{Guid.NewGuid():N}.jsonl");
        var log = new List<string>();
        try
        {
            string[] cases = ["ok-7", "ok-3", "prose", "error500-once", "error500-always", "ratelimit-once", "hang-once",
                "hang-always", "garbage-body", "wrong-shape", "garbage-answer"];
            var judge = new LlmJudge(new ChatClientJudgeBackend(Config(server, cache)), Config(server, cache), l => { lock (log) log.Add(l); });
            var sw = Stopwatch.StartNew();
            var results = await judge.JudgeIrsAsync(cases.Select(Item).ToList());
            sw.Stop();

            Assert.Equal(cases, results.Select(r => r.Id).ToArray());      // none lost, order kept
            var byId = results.ToDictionary(r => r.Id);
            Assert.Equal(7, byId["ok-7"].Score);
            Assert.Equal(3, byId["ok-3"].Score);
            Assert.Equal(6, byId["prose"].Score);
            Assert.Equal(8, byId["error500-once"].Score);
            Assert.Equal(9, byId["ratelimit-once"].Score);
            Assert.Equal(5, byId["hang-once"].Score);
            Assert.Contains("HTTP 500", byId["error500-always"].Error);
            Assert.Contains("timed out", byId["hang-always"].Error);
            Assert.Contains("malformed response", byId["garbage-body"].Error);
            Assert.Contains("malformed response", byId["wrong-shape"].Error);
            Assert.Equal(3, server.Requests["wrong-shape"]);
            Assert.Contains("no 1-10 score", byId["garbage-answer"].Error);
            Assert.All(results, r => Assert.True(r.Ok ^ (r.Error != null)));

            // Bounded: never more than MaxAttempts requests per judgement, and the ones that succeed at once used one.
            Assert.All(server.Requests, kv => Assert.InRange(kv.Value, 1, 3));
            Assert.Equal(1, server.Requests["ok-7"]);
            Assert.Equal(2, server.Requests["error500-once"]);
            Assert.Equal(3, server.Requests["error500-always"]);
            Assert.Equal(3, server.Requests["hang-always"]);
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"took {sw.Elapsed}");

            // Retry-After: 1 was honoured (backoff alone would be ~50 ms).
            var times = server.Log.Where(e => e.Case == "ratelimit-once").Select(e => e.At).ToList();
            Assert.True(times[1] - times[0] >= TimeSpan.FromSeconds(0.9), $"retried after {(times[1] - times[0]).TotalMilliseconds} ms");

            // The key reached the server but never the log or the cache.
            Assert.Contains($"Bearer {Secret}", server.Authorizations);
            Assert.DoesNotContain(log, l => l.Contains(Secret));
            Assert.DoesNotContain(Secret, File.ReadAllText(cache));
            Assert.DoesNotContain(Secret, Config(server).ToString());

            // Re-run: made judgements come from the cache (no request), failed ones are tried again.
            int before = server.Total;
            var again = await new LlmJudge(new ChatClientJudgeBackend(Config(server, cache)), Config(server, cache))
                .JudgeIrsAsync(new[] { "ok-7", "prose", "error500-always" }.Select(Item).ToList());
            Assert.True(again[0].FromCache && again[0].Score == 7 && again[0].Attempts == 0);
            Assert.True(again[1].FromCache && again[1].Score == 6);
            Assert.False(again[2].Ok);
            Assert.Equal(before + 3, server.Total);
        }
        finally { File.Delete(cache); }
    }

    [Fact]
    public async Task RunDeadlineReportsUnfinishedJudgementsAsFailed()
    {
        using var server = new FakeOpenAiServer();
        var config = Config(server) with { MaxConcurrency = 2, Deadline = TimeSpan.FromSeconds(1.5) };
        var items = Enumerable.Range(0, 6).Select(i => new IrsItem($"h{i}", "x", "[[case:hang-always]]")).ToList();
        var sw = Stopwatch.StartNew();
        var results = await new LlmJudge(new ChatClientJudgeBackend(config), config).JudgeIrsAsync(items);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"took {sw.Elapsed}");
        Assert.Equal(6, results.Count);
        Assert.All(results, r => Assert.False(r.Ok));
        Assert.Equal(items.Select(i => i.Id), results.Select(r => r.Id));
    }

    [Fact]
    public async Task PairwiseThroughTheServer()
    {
        using var server = new FakeOpenAiServer();
        var config = Config(server);
        var results = await new LlmJudge(new ChatClientJudgeBackend(config), config)
            .JudgePairwiseAsync([new PairwiseItem("p", "Say hi [[case:pair-a]]", "hi", "bye")]);
        Assert.Equal(PairwiseWinner.A, results[0].Winner);
    }
}
