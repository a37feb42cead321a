using System.Net;
using System.Net.Sockets;
using InstructTune.Evaluation.Judge;

namespace InstructTune.Tests.Evaluation.Judge;

/// <summary>
/// The judge's transport failures through Microsoft.Extensions.AI's IChatClient: each ends as a failed judgement whose
/// error says what happened (size cap, slow body timeout, refused connection, DNS), within bounded attempts, time and
/// memory; an invalid base_url is refused when the config is read, naming the line and key.
/// </summary>
/// <remarks>In the "Memory" collection: the allocation bound reads the process-wide counter, which parallel tests would inflate.</remarks>
[Collection("Memory")]
public class JudgeTransportTests
{
    private const string Secret = "sk-test-SECRET-transport";

    private static JudgeConfig Config(string baseUrl, string? cache = null) => new()
    {
        BaseUrl = baseUrl, Model = "judge-test", ApiKey = Secret, MaxAttempts = 2,
        AttemptTimeout = TimeSpan.FromSeconds(2), BaseDelay = TimeSpan.FromMilliseconds(50), MaxConcurrency = 2,
        MaxResponseBytes = 1 << 20, CachePath = cache,
    };

    private static IrsItem Item(string c) => new(c, "Summarise the text.", $"A summary. [[case:{c}]]");

    [Fact]
    public async Task OversizedAndSlowBodiesFailWithTheirReasonAndBoundedMemory()
    {
        using var server = new FakeOpenAiServer();
        var cache = Path.Combine(Path.GetTempPath(), $"itune-judge-transport-{Guid.NewGuid():N}.jsonl");
        var log = new List<string>();
        try
        {
            var cfg = Config(server.BaseUrl, cache);
            using var backend = new ChatClientJudgeBackend(cfg);
            var judge = new LlmJudge(backend, cfg, l => { lock (log) log.Add(l); });
            long allocated = GC.GetTotalAllocatedBytes(precise: true);
            var results = await judge.JudgeIrsAsync(new[] { "ok-7", "huge-declared", "huge-chunked", "slow-body" }.Select(Item).ToList());
            allocated = GC.GetTotalAllocatedBytes(precise: true) - allocated;
            var byId = results.ToDictionary(r => r.Id);
            Assert.Equal(7, byId["ok-7"].Score);
            Assert.Contains("larger than 1,048,576 bytes", byId["huge-declared"].Error);
            Assert.Contains("larger than 1,048,576 bytes", byId["huge-chunked"].Error);
            // A body over the cap is not retried: the same server would send it again.
            Assert.Equal(1, server.Requests["huge-declared"]);
            Assert.Equal(1, server.Requests["huge-chunked"]);
            Assert.Contains("timed out after 2 s", byId["slow-body"].Error);
            Assert.Equal(2, server.Requests["slow-body"]);
            // Memory: the 64 MB body cost at most a few MB of allocations on our side (cap + buffers).
            Assert.True(allocated < 48L << 20, $"allocated {allocated:N0} bytes");
            Assert.True(server.ChunkedBytesSent < 48L << 20, $"the client read {server.ChunkedBytesSent:N0} bytes");
            Assert.DoesNotContain(log, l => l.Contains(Secret));

            // The made judgement is cached; a rerun resumes: only the failed ones go out again.
            int before = server.Total;
            var again = await new LlmJudge(backend, cfg).JudgeIrsAsync(new[] { "ok-7", "huge-declared" }.Select(Item).ToList());
            Assert.True(again[0].FromCache && again[0].Score == 7);
            Assert.False(again[1].Ok);
            Assert.Equal(before + 1, server.Total);
            Assert.DoesNotContain(Secret, File.ReadAllText(cache));
        }
        finally { File.Delete(cache); }
    }

    [Fact]
    public async Task RefusedConnectionAndUnknownHostSayWhatHappened()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop(); // nothing listens there now
        var cfg = Config($"http://127.0.0.1:{port}/v1");
        using (var backend = new ChatClientJudgeBackend(cfg))
        {
            var r = (await new LlmJudge(backend, cfg).JudgeIrsAsync([Item("ok-7")]))[0];
            Assert.False(r.Ok);
            Assert.Equal($"connection refused by 127.0.0.1:{port} (is the server running?)", r.Error);
            Assert.Equal(2, r.Attempts); // transient: retried up to max_attempts
            Assert.DoesNotContain("HTTP 0", r.Error);
        }
        var dns = Config("http://judge.invalid/v1");
        using (var backend = new ChatClientJudgeBackend(dns))
        {
            var r = (await new LlmJudge(backend, dns).JudgeIrsAsync([Item("ok-7")]))[0];
            Assert.False(r.Ok);
            Assert.Contains("DNS lookup failed for judge.invalid", r.Error);
            Assert.Equal(1, r.Attempts); // not transient
        }
    }

    [Theory]
    [InlineData("base_url: not a url", "base_url: \"not a url\" is not an http(s) URL")]
    [InlineData("base_url: ftp://host/v1", "base_url")]
    [InlineData("max_response_bytes: 12", "max_response_bytes")]
    [InlineData("json_mode: maybe", "json_mode")]
    public void BadTransportSettingsAreRefusedNamingLineAndKey(string line, string expected)
    {
        var path = Path.Combine(Path.GetTempPath(), $"itune-judge-{Guid.NewGuid():N}.yaml");
        File.WriteAllText(path, "model: m\n" + line + "\n");
        try
        {
            var ex = Assert.Throws<global::InstructTune.Evaluation.Metrics.EvalInputException>(() => JudgeConfigFile.Load(path, _ => null));
            Assert.Contains(expected, ex.Message);
        }
        finally { File.Delete(path); }
    }
}
