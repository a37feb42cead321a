using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace InstructTune.Tests.Evaluation.Judge;

/// <summary>
/// A minimal OpenAI-compatible chat-completions server on 127.0.0.1 for judge tests. What it does with a request
/// is chosen by a "[[case:NAME]]" marker in the last message: answer with a score, answer in prose, fail with 500
/// (once or always), 429 with Retry-After (once), hang (once or always), return a non-JSON body, a JSON body of
/// the wrong shape, or a valid completion whose text holds no score. Counts requests and records times and Authorization headers.
/// With <see cref="Script"/> set, the script answers instead (data-generation tests): it sees the last message and
/// returns the reply, or null to fall back to the markers. <see cref="Prompts"/> counts requests per last message.
/// </summary>
public sealed partial class FakeOpenAiServer : IDisposable
{
    private readonly HttpListener listener = new();
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;
    public ConcurrentDictionary<string, int> Requests { get; } = new();
    public ConcurrentQueue<(string Case, DateTime At)> Log { get; } = new();
    public ConcurrentBag<string> Authorizations { get; } = [];
    public string BaseUrl { get; }
    public int Total => Requests.Values.Sum();
    public ConcurrentDictionary<string, int> Prompts { get; } = new();
    public Func<string, ScriptedReply?>? Script { get; set; }

    public FakeOpenAiServer()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        BaseUrl = $"http://127.0.0.1:{port}/v1";
        loop = Task.Run(AcceptLoop);
    }

    [GeneratedRegex(@"\[\[case:([a-z0-9\-]+)\]\]")]
    private static partial Regex CaseMarker();

    private async Task AcceptLoop()
    {
        while (!stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try { ctx = await listener.GetContextAsync(); }
            catch (Exception) { return; }
            _ = Task.Run(() => Handle(ctx));
        }
    }

    private async Task Handle(HttpListenerContext ctx)
    {
        try
        {
            string body = await new StreamReader(ctx.Request.InputStream).ReadToEndAsync();
            Authorizations.Add(ctx.Request.Headers["Authorization"] ?? "");
            using var doc = JsonDocument.Parse(body);
            var messages = doc.RootElement.GetProperty("messages");
            string last = messages[messages.GetArrayLength() - 1].GetProperty("content").GetString() ?? "";
            Prompts.AddOrUpdate(last, 1, (_, c) => c + 1);
            if (Script?.Invoke(last) is { } scripted)
            {
                Requests.AddOrUpdate("script", 1, (_, c) => c + 1);
                if (scripted.RetryAfter is { } ra) ctx.Response.AddHeader("Retry-After", ra);
                if (scripted.Hang) await Hang();
                else if (scripted.RawBody is { } raw) await Raw(ctx, scripted.Status, raw, "application/json");
                else if (scripted.Status != 200) await Status(ctx, scripted.Status);
                else await Complete(ctx, scripted.Content ?? "", scripted.Finish);
                return;
            }
            string name = CaseMarker().Match(last) is { Success: true } m ? m.Groups[1].Value : "ok-7";
            int n = Requests.AddOrUpdate(name, 1, (_, c) => c + 1);
            Log.Enqueue((name, DateTime.UtcNow));
            switch (name)
            {
                case var s when s.StartsWith("ok-"): await Complete(ctx, $"{{\"score\": {s[3..]}, \"reason\": \"fine\"}}"); break;
                case "prose": await Complete(ctx, "The answer follows most of the request but misses the word limit. Score: 6/10"); break;
                case "pair-a": await Complete(ctx, "{\"winner\": \"A\"}"); break;
                case "error500-once" when n == 1: await Status(ctx, 500); break;
                case "error500-once": await Complete(ctx, "{\"score\": 8}"); break;
                case "error500-always": await Status(ctx, 500); break;
                case "ratelimit-once" when n == 1:
                    ctx.Response.AddHeader("Retry-After", "1");
                    await Status(ctx, 429);
                    break;
                case "ratelimit-once": await Complete(ctx, "Rating: 9"); break;
                case "hang-once" when n == 1: await Hang(); break;
                case "hang-once": await Complete(ctx, "[[5]]"); break;
                case "hang-always": await Hang(); break;
                case "garbage-body": await Raw(ctx, 200, "<<<this is not json>>>", "application/json"); break;
                case "wrong-shape": await Raw(ctx, 200, "{\"foo\": [1, 2]}", "application/json"); break;
                case "garbage-answer": await Complete(ctx, "I really cannot decide about this one."); break;
                case "huge-declared":
                    // Declares 200 MB; the client must refuse from the header without reading.
                    ctx.Response.StatusCode = 200;
                    ctx.Response.ContentType = "application/json";
                    ctx.Response.ContentLength64 = 200L << 20;
                    await ctx.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes("{\"id\": \""));
                    break;
                case "huge-chunked": await Chunked(ctx, 64L << 20); break;
                case "slow-body":
                    // Headers and the start of a body at once, then one byte every 300 ms: only the attempt timeout ends it.
                    ctx.Response.StatusCode = 200;
                    ctx.Response.ContentType = "application/json";
                    ctx.Response.SendChunked = true;
                    for (int i = 0; i < 1000 && !stop.IsCancellationRequested; i++)
                    {
                        await ctx.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes(i == 0 ? "{\"id\": \"" : "x"));
                        await ctx.Response.OutputStream.FlushAsync();
                        await Task.Delay(300, stop.Token);
                    }
                    break;
                default: await Status(ctx, 400); break;
            }
        }
        catch (Exception) { /* client gave up (timeout) or server stopping */ }
        finally
        {
            try { ctx.Response.Close(); } catch (Exception) { }
        }
    }

    /// <summary>Bytes of the chunked bodies actually sent (the client stops reading at its cap).</summary>
    public long ChunkedBytesSent;

    // A valid-looking JSON start followed by `total` bytes of padding, sent chunked (no Content-Length).
    private async Task Chunked(HttpListenerContext ctx, long total)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        ctx.Response.SendChunked = true;
        var block = Encoding.UTF8.GetBytes(new string('a', 1 << 16));
        await ctx.Response.OutputStream.WriteAsync(Encoding.UTF8.GetBytes("{\"id\": \""));
        for (long sent = 0; sent < total && !stop.IsCancellationRequested; sent += block.Length)
        {
            await ctx.Response.OutputStream.WriteAsync(block);
            Interlocked.Add(ref ChunkedBytesSent, block.Length);
        }
    }

    private Task Hang() => Task.Delay(Timeout.Infinite, stop.Token);

    private static Task Status(HttpListenerContext ctx, int status) =>
        Raw(ctx, status, $"{{\"error\": {{\"message\": \"simulated {status}\", \"type\": \"server_error\"}}}}", "application/json");

    private static Task Complete(HttpListenerContext ctx, string content, string finish = "stop") =>
        Raw(ctx, 200, JsonSerializer.Serialize(new
        {
            id = "chatcmpl-test", @object = "chat.completion", created = 1700000000, model = "judge-test",
            choices = new[] { new { index = 0, message = new { role = "assistant", content }, finish_reason = finish } },
            usage = new { prompt_tokens = 10, completion_tokens = 5, total_tokens = 15 },
        }), "application/json");

    private static async Task Raw(HttpListenerContext ctx, int status, string body, string type)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = type;
        ctx.Response.ContentLength64 = bytes.Length;
        await ctx.Response.OutputStream.WriteAsync(bytes);
    }

    public void Dispose()
    {
        stop.Cancel();
        try { listener.Stop(); listener.Close(); } catch (Exception) { }
        try { loop.Wait(TimeSpan.FromSeconds(2)); } catch (Exception) { }
    }
}

/// <summary>A scripted answer: a completion (<see cref="Content"/>, finish_reason <see cref="Finish"/>), an error
/// status (with an optional Retry-After), a raw body, or a hang.</summary>
public sealed record ScriptedReply(string? Content, string Finish = "stop", int Status = 200, string? RetryAfter = null,
    string? RawBody = null, bool Hang = false);
