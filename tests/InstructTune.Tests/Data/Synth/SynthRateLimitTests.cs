// synth.requests_per_minute: whatever the concurrency, the k-th request (from 0) starts no earlier than k · 60 / rpm
// seconds after the batch was handed over, i.e. at most 1 + t · rpm / 60 requests start in any first t seconds (the
// limit APIs count). Checked in process against a chat client that records when each call starts; a lower bound only
// (a loaded machine can only make starts later), so it cannot flake on a slow machine.
using System.Diagnostics;
using InstructTune.Data.Synth;
using Microsoft.Extensions.AI;

namespace InstructTune.Tests.Data.Synth;

public class SynthRateLimitTests
{
    private sealed class StartClock : IChatClient
    {
        private readonly Stopwatch clock = Stopwatch.StartNew();
        public List<double> Starts { get; } = [];
        public double Now => clock.Elapsed.TotalSeconds;

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken ct = default)
        {
            lock (Starts) Starts.Add(clock.Elapsed.TotalSeconds);
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "ok")) { FinishReason = ChatFinishReason.Stop });
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken ct = default) => throw new NotSupportedException();
        public object? GetService(Type serviceType, object? serviceKey = null) => null;
        public void Dispose() { }
    }

    private static (double Handed, List<double> Starts) Run(double rpm, int n)
    {
        var client = new StartClock();
        double handed = 0;
        var endpoint = new SynthEndpoint(client, new SynthEndpointOptions { Endpoint = "test", Concurrency = 4, RequestsPerMinute = rpm }, new SynthJournal(null));
        lock (client.Starts) handed = client.Now;
        var replies = endpoint.CompleteAllAsync(Enumerable.Range(0, n).Select(i => new SynthRequest("s", $"request {i}")).ToList(), default).GetAwaiter().GetResult();
        Assert.All(replies, r => Assert.True(r.Ok));
        return (handed, client.Starts.Order().ToList());
    }

    [Fact]
    public void Requests_per_minute_spaces_request_starts()
    {
        const double rpm = 600;   // one start every 0.1 s
        var (handed, starts) = Run(rpm, 6);
        Assert.Equal(6, starts.Count);
        for (int k = 0; k < starts.Count; k++)
            Assert.True(starts[k] - handed >= 0.95 * k * 60 / rpm,
                $"request {k} started {starts[k] - handed:F3} s after the batch; starts {string.Join(", ", starts.Select(s => (s - handed).ToString("F3")))}");
    }
}
