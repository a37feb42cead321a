// itune serve end to end: HttpClient against a real Kestrel on 127.0.0.1 and an ephemeral port, serving a tiny
// random Llama with the Llama-2 tokenizer and chat template and two LoRA adapters. Outputs are checked against
// independent paths: `itune generate` in-process, Generator.Generate on the template-rendered ids, the streamed
// chunks against the whole response, and each adapter against a model with that adapter attached.
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Cli;
using InstructTune.Cli.Serve;
using InstructTune.Generation;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;
using InstructTune.Serving;
using InstructTune.Templates;
using InstructTune.Tests.Evaluation.ModelBackends;
using InstructTune.Tokenizers;
using Microsoft.AspNetCore.Builder;

namespace InstructTune.Tests.Serving;

/// <summary>A tiny random Llama (vocab 32000) with the Llama-2 tokenizer files and two LoRA adapters.</summary>
internal static class ServeTestModel
{
    private static readonly Lazy<(string Model, string A, string B)> Dirs = new(Create);
    public static string Model => Dirs.Value.Model;
    public static string AdapterA => Dirs.Value.A;
    public static string AdapterB => Dirs.Value.B;
    public const int Hidden = 32;

    private static (string, string, string) Create()
    {
        var dir = Directory.CreateTempSubdirectory("serve-model").FullName;
        foreach (var f in new[] { "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(TestPaths.SharedTestData("tokenizers", "llama2", f), Path.Combine(dir, f));
        var config = new LlamaConfig
        {
            VocabSize = 32000, HiddenSize = Hidden, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4,
            NumKeyValueHeads = 2, MaxPositionEmbeddings = 4096, BosTokenId = 1, EosTokenIds = [2],
        };
        RandomCheckpoint.Create(config, dir, 7, DType.F32);
        return (dir, TinyEvalModel.WriteAdapter("model.layers.0.self_attn.q_proj", Hidden, Hidden, seed: 1),
                     TinyEvalModel.WriteAdapter("model.layers.1.mlp.down_proj", 64, Hidden, seed: 2));
    }
}

/// <summary>A Kestrel instance on an ephemeral loopback port for one test.</summary>
internal sealed class RunningServer : IAsyncDisposable
{
    public ServedModel Served { get; }
    public WebApplication App { get; }
    public HttpClient Client { get; }
    public string Url { get; }

    public RunningServer(ServeLimits? limits = null, ServeHostOptions? options = null, bool adapters = true)
    {
        Served = ServedModel.Load(ServeTestModel.Model,
            adapters ? [("alpha", ServeTestModel.AdapterA), ("beta", ServeTestModel.AdapterB)] : [], limits ?? new ServeLimits(), name: "base");
        App = ServeHost.Build(Served, (options ?? new ServeHostOptions()) with { Port = 0, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning });
        App.StartAsync().GetAwaiter().GetResult();
        Url = ServeHost.BoundUrl(App);
        Client = new HttpClient { BaseAddress = new Uri(Url), Timeout = TimeSpan.FromMinutes(2) };
    }

    public async Task<(HttpStatusCode Status, JsonElement Body)> Post(string path, object body, string? key = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json") };
        if (key != null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var resp = await Client.SendAsync(req);
        var text = await resp.Content.ReadAsStringAsync();
        return (resp.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        Served.Dispose();
    }
}

[Collection("Console")]
public class ServeTests
{
    private static object Chat(string text, int maxTokens = 16, string? model = null, double temperature = 0, bool stream = false) => new Dictionary<string, object?>
    {
        ["model"] = model ?? "base",
        ["messages"] = new[] { new { role = "user", content = text } },
        ["max_tokens"] = maxTokens, ["temperature"] = temperature, ["stream"] = stream,
    };

    // The independent reference: the template rendered by hand through the tokenizer's chat template, encoded,
    // generated greedily by Generator.Generate on a freshly loaded model (with the adapter attached), decoded.
    private static string Reference(string text, int maxTokens, string? adapterDir = null)
    {
        using var model = InferenceModel.Load(ServeTestModel.Model);
        if (adapterDir != null) model.ApplyAdapter(LoraAdapterFile.Load(adapterDir));
        var tok = TokenizerLoader.Load(ServeTestModel.Model);
        var rendered = ChatTemplateLoader.FromTokenizer(ServeTestModel.Model).Render([new ChatMessage("user", text)], addGenerationPrompt: true).Text;
        var ids = tok.Encode(rendered, addSpecialTokens: false).Ids;
        var r = Generator.Generate(model, [ids], new GenerationOptions { MaxNewTokens = maxTokens, StopTokenIds = [2] })[0];
        return tok.Decode(r.GeneratedIds, skipSpecialTokens: true);
    }

    [Fact]
    public async Task Chat_and_completion_equal_greedy_generation_and_streaming_concatenates()
    {
        await using var s = new RunningServer();
        var (status, body) = await s.Post("/v1/chat/completions", Chat("Name three colours.", 20));
        Assert.Equal(HttpStatusCode.OK, status);
        string text = body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.Equal(Reference("Name three colours.", 20), text);
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        Assert.True(body.GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0);

        // /v1/completions against `itune generate --prompt … --json` run in-process.
        var (cs, cb) = await s.Post("/v1/completions", new { model = "base", prompt = "Once upon a time", max_tokens = 12, temperature = 0 });
        Assert.Equal(HttpStatusCode.OK, cs);
        var (rc, o, e) = TestConsole.Run("generate", "--model", ServeTestModel.Model, "--prompt", "Once upon a time", "--max-new-tokens", "12", "--json");
        Assert.True(rc == 0, e);
        using var gen = JsonDocument.Parse(o);
        Assert.Equal(gen.RootElement.GetProperty("text").GetString(), cb.GetProperty("choices")[0].GetProperty("text").GetString());

        // Streaming: SSE chunks concatenate to the same text and end with [DONE].
        using var req = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            { Content = new StringContent(JsonSerializer.Serialize(Chat("Name three colours.", 20, stream: true)), System.Text.Encoding.UTF8, "application/json") };
        using var resp = await s.Client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", resp.Content.Headers.ContentType!.MediaType);
        var events = (await resp.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        var sb = new StringBuilder();
        string? finish = null;
        foreach (var ev in events[..^1])
        {
            Assert.StartsWith("data: ", ev);
            using var d = JsonDocument.Parse(ev[6..]);
            Assert.Equal("chat.completion.chunk", d.RootElement.GetProperty("object").GetString());
            var ch = d.RootElement.GetProperty("choices")[0];
            if (ch.GetProperty("delta").TryGetProperty("content", out var c)) sb.Append(c.GetString());
            if (ch.GetProperty("finish_reason").ValueKind == JsonValueKind.String) finish = ch.GetProperty("finish_reason").GetString();
        }
        Assert.Equal(text, sb.ToString());
        Assert.NotNull(finish);
        Assert.True(events.Length > 4, "streamed in several chunks");
    }

    [Fact]
    public async Task Adapters_by_model_name_give_their_own_outputs_and_models_lists_them()
    {
        await using var s = new RunningServer(options: new ServeHostOptions { AllowAdapterLoading = true });
        var models = await s.Client.GetFromJsonAsync<JsonElement>("/v1/models");
        Assert.Equal(["base", "alpha", "beta"], models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        const string q = "Tell me a story.";
        var outs = new Dictionary<string, string>();
        var tasks = new[] { "base", "alpha", "beta" }.Select(async m =>
        {
            var (st, b) = await s.Post("/v1/chat/completions", Chat(q, 16, m));
            Assert.Equal(HttpStatusCode.OK, st);
            return (m, b.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!);
        });
        foreach (var (m, t) in await Task.WhenAll(tasks)) outs[m] = t;   // three models in one batch
        Assert.Equal(Reference(q, 16), outs["base"]);
        Assert.Equal(Reference(q, 16, ServeTestModel.AdapterA), outs["alpha"]);
        Assert.Equal(Reference(q, 16, ServeTestModel.AdapterB), outs["beta"]);
        Assert.Equal(3, outs.Values.Distinct().Count());

        // Hot-loading: the same adapter under a new name answers like "alpha".
        var (ls, _) = await s.Post("/v1/adapters", new { name = "gamma", path = ServeTestModel.AdapterA });
        Assert.Equal(HttpStatusCode.Created, ls);
        var (gs, gb) = await s.Post("/v1/chat/completions", Chat(q, 16, "gamma"));
        Assert.Equal(HttpStatusCode.OK, gs);
        Assert.Equal(outs["alpha"], gb.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var (bad, bb) = await s.Post("/v1/adapters", new { name = "delta", path = "/nonexistent/adapter" });
        Assert.Equal(HttpStatusCode.BadRequest, bad);
        Assert.Contains("/nonexistent/adapter", bb.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Sixteen_concurrent_requests_equal_sequential_ones()
    {
        await using var s = new RunningServer(adapters: false);
        var prompts = Enumerable.Range(0, 16).Select(i => $"Question {i}: what is {i} plus {i}?").ToArray();
        var sequential = new List<string>();
        foreach (var p in prompts)
        {
            var (st, b) = await s.Post("/v1/chat/completions", Chat(p, 12));
            Assert.Equal(HttpStatusCode.OK, st);
            sequential.Add(b.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!);
        }
        long stepsBefore = s.Served.Engine.Steps;
        var concurrent = await Task.WhenAll(prompts.Select(async p =>
        {
            var (st, b) = await s.Post("/v1/chat/completions", Chat(p, 12));
            Assert.Equal(HttpStatusCode.OK, st);
            return b.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        }));
        Assert.Equal(sequential, concurrent);
        // Batched: far fewer decode steps than 16 requests × their tokens.
        long steps = s.Served.Engine.Steps - stepsBefore;
        Assert.True(steps < 16 * 12 / 2, $"{steps} decode steps for 16 concurrent requests: not batched");
    }

    [Fact]
    public async Task Auth_limits_and_bad_input_get_openai_errors()
    {
        Environment.SetEnvironmentVariable("ITUNE_TEST_KEY", "sekret");
        await using var s = new RunningServer(new ServeLimits { MaxConcurrent = 1, MaxQueue = 0, MaxRequestBytes = 4096, MaxTokensLimit = 64, DefaultMaxTokens = 16 },
            new ServeHostOptions { ApiKey = "sekret" }, adapters: false);
        var (st, b) = await s.Post("/v1/chat/completions", Chat("hi", 4));
        Assert.Equal(HttpStatusCode.Unauthorized, st);
        Assert.Equal("invalid_api_key", b.GetProperty("error").GetProperty("code").GetString());
        (st, _) = await s.Post("/v1/chat/completions", Chat("hi", 4), key: "wrong");
        Assert.Equal(HttpStatusCode.Unauthorized, st);
        (st, _) = await s.Post("/v1/chat/completions", Chat("hi", 4), key: "sekret");
        Assert.Equal(HttpStatusCode.OK, st);

        async Task Expect(HttpStatusCode code, string param, object body)
        {
            var (got, e) = await s.Post("/v1/chat/completions", body, "sekret");
            Assert.Equal(code, got);
            var err = e.GetProperty("error");
            Assert.False(string.IsNullOrEmpty(err.GetProperty("message").GetString()));
            if (param.Length > 0) Assert.Equal(param, err.GetProperty("param").GetString());
        }
        await Expect(HttpStatusCode.BadRequest, "max_tokens", Chat("hi", 1_000_000));
        await Expect(HttpStatusCode.BadRequest, "temperature", Chat("hi", 4, temperature: -1));
        await Expect(HttpStatusCode.BadRequest, "messages", new { model = "base", messages = Array.Empty<object>() });
        await Expect(HttpStatusCode.NotFound, "model", Chat("hi", 4, model: "nope"));
        await Expect(HttpStatusCode.BadRequest, "bogus", new { model = "base", messages = new[] { new { role = "user", content = "hi" } }, bogus = 1 });
        await Expect(HttpStatusCode.RequestEntityTooLarge, "", Chat(new string('x', 8000), 4));
        using (var req = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent("{\"model\": \"base\", \"messages\": [", System.Text.Encoding.UTF8, "application/json") })
        {
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sekret");
            using var resp = await s.Client.SendAsync(req);
            Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
            var text = await resp.Content.ReadAsStringAsync();
            Assert.Contains("\"error\"", text);
            Assert.DoesNotContain("   at ", text);
        }

        // One slot, no queue: while a long request runs, the next gets 429 with Retry-After.
        // On a fast kernel the 64 tokens can finish between two polls: stop waiting then (the check below only
        // asserts 429 while the slot is still taken, as it already did).
        var longReq = s.Post("/v1/chat/completions", Chat("long", 64), "sekret");
        await WaitFor(() => s.Served.Engine.Load.Running == 1 || longReq.IsCompleted);
        using (var req = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(JsonSerializer.Serialize(Chat("hi", 4)), System.Text.Encoding.UTF8, "application/json") })
        {
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sekret");
            using var resp = await s.Client.SendAsync(req);
            if (s.Served.Engine.Load.Running == 1 || resp.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, resp.StatusCode);
                Assert.True(resp.Headers.RetryAfter?.Delta > TimeSpan.Zero);
            }
        }
        Assert.Equal(HttpStatusCode.OK, (await longReq).Status);
    }

    [Fact]
    public async Task A_disconnected_client_frees_its_slot()
    {
        // The tiny test model decodes about 4000 tokens a second on its own scheduler thread, and Kestrel notices a
        // closed connection some hundreds of milliseconds later (seconds on a loaded machine). An attempt whose
        // request ran to its end without being cancelled proves nothing either way, so it is repeated; a server that
        // ignores disconnects runs every attempt to the end and fails.
        await using var s = new RunningServer(new ServeLimits { MaxConcurrent = 1, MaxQueue = 4, MaxTokensLimit = 4096 }, adapters: false);
        var seen = new List<string>();
        for (int attempt = 0; attempt < 6; attempt++)
        {
            long tokens0 = s.Served.Engine.TokensGenerated, cancelled0 = s.Served.Engine.Cancelled;
            using var cts = new CancellationTokenSource();
            var body = new Dictionary<string, object?>(((Dictionary<string, object?>)Chat("go on forever", 4000, stream: true)));
            using var req = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json") };
            var resp = await s.Client.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, cts.Token);
            var stream = await resp.Content.ReadAsStreamAsync(cts.Token);
            var buf = new byte[64];
            _ = await stream.ReadAsync(buf, cts.Token);                 // generation has started
            cts.Cancel();
            resp.Dispose();
            await WaitFor(() => s.Served.Engine.Load.Running == 0);
            long tokens = s.Served.Engine.TokensGenerated - tokens0, cancelled = s.Served.Engine.Cancelled - cancelled0;
            seen.Add($"{tokens} tokens, {cancelled} cancelled");
            if (tokens >= 4000 && cancelled == 0) continue;             // finished before the server saw the client leave
            Assert.True(tokens < 4000, $"{tokens} tokens: the disconnected request ran to the end ({string.Join("; ", seen)})");
            Assert.Equal(1, cancelled);
            var (st, _) = await s.Post("/v1/chat/completions", Chat("next", 4));
            Assert.Equal(HttpStatusCode.OK, st);
            return;
        }
        Assert.Fail($"every attempt ran to its end: the server never saw its client disconnect ({string.Join("; ", seen)})");
    }

    [Fact]
    public async Task Embeddings_are_mean_pooled_last_hidden_states_and_json_mode_gives_json()
    {
        await using var s = new RunningServer(adapters: false);
        var (st, b) = await s.Post("/v1/embeddings", new { model = "base", input = new[] { "hello world", "a second text" } });
        Assert.Equal(HttpStatusCode.OK, st);
        var v = b.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(x => x.GetSingle()).ToArray();
        Assert.Equal(ServeTestModel.Hidden, v.Length);
        // LmHead is linear: LmHead · mean(hidden) = mean over positions of the logits that Scorer returns.
        using var model = InferenceModel.Load(ServeTestModel.Model);
        var ids = TokenizerLoader.Load(ServeTestModel.Model).Encode("hello world", addSpecialTokens: true).Ids;
        var logits = Scorer.Score(model, [ids], keepLogits: true)[0].Logits!;
        int V = model.Config.VocabSize;
        var viaEmbedding = new float[V];
        InferenceLinear.Forward(v, model.LmHead, [], viaEmbedding, 1);
        for (int t = 0; t < V; t += 97)
        {
            double mean = Enumerable.Range(0, ids.Length).Average(p => logits[p * V + t]);
            Assert.True(Math.Abs(mean - viaEmbedding[t]) < 1e-3, $"token {t}: {mean} vs {viaEmbedding[t]}");
        }

        var (js, jb) = await s.Post("/v1/chat/completions", new Dictionary<string, object?>
        {
            ["model"] = "base", ["messages"] = new[] { new { role = "user", content = "Reply in JSON." } },
            ["max_tokens"] = 40, ["temperature"] = 0, ["response_format"] = new { type = "json_object" },
        });
        Assert.Equal(HttpStatusCode.OK, js);
        var json = jb.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        var state = JsonPrefix.Check(json);
        Assert.True(state != JsonPrefix.State.Invalid, json);
        if (state == JsonPrefix.State.Complete) JsonDocument.Parse(json).Dispose();
        else Assert.Equal("length", jb.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    internal static async Task WaitFor(Func<bool> condition)
    {
        for (int i = 0; i < 600 && !condition(); i++) await Task.Delay(50);
        Assert.True(condition(), "condition not reached in 30 s");
    }
}
