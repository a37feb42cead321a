// The HTTP face of `itune serve`: an ASP.NET Core (Kestrel) minimal API speaking OpenAI's REST dialect over a
// ServedModel. Requests are parsed strictly (unknown fields and wrong types are 400s that name the field), every
// failure is an OpenAI error object with the right status (never a stack trace), generation goes through the
// continuous-batching ServingEngine, and a client that disconnects cancels its sequences. One structured log line
// per request with its id, model, token counts and duration; prompt text only with log_prompts.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Serving;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TemplateMessage = InstructTune.Templates.ChatMessage;

namespace InstructTune.Cli.Serve;

/// <summary>Where and how to listen (the non-model part of the `serve:` settings).</summary>
public sealed record ServeHostOptions
{
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 picks a free port (tests).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>Bearer key every /v1 request must carry; null = no auth.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Allow POST /v1/adapters to load adapters while serving.</summary>
    public bool AllowAdapterLoading { get; init; }
    /// <summary>Write prompt and completion text into the request logs.</summary>
    public bool LogPrompts { get; init; }
    public LogLevel LogLevel { get; init; } = LogLevel.Information;
}

public static class ServeHost
{
    private static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    /// <summary>Builds (does not start) the web app; <see cref="WebApplication.StartAsync"/> then <see cref="BoundUrl"/>.</summary>
    public static WebApplication Build(ServedModel served, ServeHostOptions o)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddJsonConsole(j => j.IncludeScopes = true);
        builder.Logging.SetMinimumLevel(o.LogLevel);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = served.Engine.Limits.MaxRequestBytes;
            if (o.Host is "localhost") k.ListenLocalhost(o.Port);
            else k.Listen(System.Net.IPAddress.Parse(o.Host), o.Port);
        });
        var app = builder.Build();
        var log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("itune.serve");

        // Request id, auth and the last-resort error object, around every endpoint.
        app.Use(async (ctx, next) =>
        {
            string id = "req-" + Guid.NewGuid().ToString("N")[..12];
            ctx.Response.Headers["x-request-id"] = id;
            ctx.Items["rid"] = id;
            var sw = Stopwatch.StartNew();
            using var scope = log.BeginScope(new Dictionary<string, object> { ["request_id"] = id });
            try
            {
                if (o.ApiKey != null && ctx.Request.Path.StartsWithSegments("/v1") && !Authorized(ctx, o.ApiKey))
                    await Error(ctx, 401, "Incorrect or missing API key: send Authorization: Bearer <key>", null, "invalid_api_key", "authentication_error");
                else await next(ctx);
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
                log.LogInformation("client disconnected {method} {path}", ctx.Request.Method, ctx.Request.Path.Value);
            }
            catch (Exception e)
            {
                log.LogError("unhandled {type}: {message}", e.GetType().Name, e.Message);
                if (!ctx.Response.HasStarted)
                    await Error(ctx, 500, $"internal error while serving the request (request id {id})", null, "internal_error", "server_error");
            }
            log.LogInformation("{method} {path} {status} {ms} ms", ctx.Request.Method, ctx.Request.Path.Value, ctx.Response.StatusCode, sw.ElapsedMilliseconds);
        });

        app.MapGet("/health", () => Results.Json(new { status = "ok", model = served.Name, running = served.Engine.Load.Running, queued = served.Engine.Load.Queued }));
        app.MapGet("/v1/models", () => Results.Json(new
        {
            @object = "list",
            data = served.ModelNames.Select(n => new { id = n, @object = "model", created = 0, owned_by = "instructtune", root = served.Name }),
        }));
        app.MapPost("/v1/chat/completions", ctx => Guard(ctx, log, () => Chat(ctx, served, o, log)));
        app.MapPost("/v1/completions", ctx => Guard(ctx, log, () => Completions(ctx, served, o, log)));
        app.MapPost("/v1/embeddings", ctx => Guard(ctx, log, () => Embeddings(ctx, served, log)));
        app.MapPost("/v1/adapters", ctx => Guard(ctx, log, () => LoadAdapter(ctx, served, o, log)));
        app.MapFallback(ctx => Error(ctx, 404, $"no route {ctx.Request.Method} {ctx.Request.Path}", null, "not_found"));
        return app;
    }

    /// <summary>The URL Kestrel bound (with the real port when <see cref="ServeHostOptions.Port"/> was 0).</summary>
    public static string BoundUrl(WebApplication app) =>
        app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();

    private static bool Authorized(HttpContext ctx, string key)
    {
        var h = ctx.Request.Headers.Authorization.ToString();
        if (!h.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return false;
        var given = Encoding.UTF8.GetBytes(h[7..].Trim());
        return System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(given, Encoding.UTF8.GetBytes(key));
    }

    // Maps request problems to OpenAI error objects; anything else propagates to the 500 handler.
    private static async Task Guard(HttpContext ctx, ILogger log, Func<Task> body)
    {
        try { await body(); }
        catch (ServeRequestException e) when (!ctx.Response.HasStarted) { await Error(ctx, e.Status, e.Message, e.Param, e.Code); }
        catch (ServerBusyException e) when (!ctx.Response.HasStarted)
        {
            ctx.Response.Headers.RetryAfter = e.RetryAfterSeconds.ToString();
            await Error(ctx, 429, e.Message, null, "rate_limit_exceeded", "rate_limit_error");
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (!ctx.Response.HasStarted)
        {
            await Error(ctx, e.StatusCode, e.StatusCode == 413 ? "the request body is larger than serve.max_request_bytes" : e.Message, null,
                e.StatusCode == 413 ? "request_too_large" : "invalid_request_error");
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException && e is not OperationCanceledException
                                  && !ctx.Response.HasStarted && !ctx.RequestAborted.IsCancellationRequested)
        {
            log.LogWarning("bad request: {message}", e.Message);
            await Error(ctx, 400, e.Message, null, "invalid_request_error");
        }
    }

    private static Task Error(HttpContext ctx, int status, string message, string? param, string code, string? type = null)
    {
        ctx.Response.StatusCode = status;
        // An unread oversized body leaves the connection unusable: tell the client not to reuse it.
        if (status == 413) ctx.Response.Headers.Connection = "close";
        return ctx.Response.WriteAsJsonAsync(new
        {
            error = new { message, type = type ?? (status >= 500 ? "server_error" : "invalid_request_error"), param, code },
        });
    }

    // ---- request parsing -------------------------------------------------------------------------------------

    private static async Task<JsonObject> ReadBody(HttpContext ctx, ServedModel served)
    {
        long max = served.Engine.Limits.MaxRequestBytes;
        if (ctx.Request.ContentLength > max) throw new ServeRequestException($"the request body has {ctx.Request.ContentLength} bytes, more than serve.max_request_bytes={max}", null, "request_too_large", 413);
        using var ms = new MemoryStream();
        var buf = new byte[16384];
        int n;
        while ((n = await ctx.Request.Body.ReadAsync(buf, ctx.RequestAborted)) > 0)
        {
            ms.Write(buf, 0, n);
            if (ms.Length > max) throw new ServeRequestException($"the request body is larger than serve.max_request_bytes={max}", null, "request_too_large", 413);
        }
        JsonNode? node;
        try { node = JsonNode.Parse(ms.ToArray()); }
        catch (JsonException e) { throw new ServeRequestException($"the request body is not valid JSON: {e.Message}", null, "invalid_json"); }
        return node as JsonObject ?? throw new ServeRequestException("the request body must be a JSON object", null, "invalid_json");
    }

    private static void OnlyKnown(JsonObject body, params string[] known)
    {
        foreach (var (k, _) in body)
            if (!known.Contains(k)) throw new ServeRequestException($"unknown field \"{k}\" (this server takes: {string.Join(", ", known)})", k, "unknown_field");
    }

    private static T? Get<T>(JsonObject body, string key)
    {
        if (!body.TryGetPropertyValue(key, out var v) || v == null) return default;
        try { return v.GetValue<T>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new ServeRequestException($"field \"{key}\" must be {(typeof(T) == typeof(string) ? "a string" : typeof(T) == typeof(bool) ? "a boolean" : "a number")}", key);
        }
    }

    private static double? GetDouble(JsonObject b, string key)
    {
        if (!b.TryGetPropertyValue(key, out var v) || v == null) return null;
        if (v is JsonValue jv && jv.TryGetValue<double>(out var d)) return d;
        throw new ServeRequestException($"field \"{key}\" must be a number", key);
    }

    private static int? GetInt(JsonObject b, string key)
    {
        var d = GetDouble(b, key);
        if (d == null) return null;
        if (d != Math.Floor(d.Value) || d > int.MaxValue || d < int.MinValue) throw new ServeRequestException($"field \"{key}\" must be an integer (got {d})", key);
        return (int)d.Value;
    }

    private static IReadOnlyList<string> GetStop(JsonObject b)
    {
        if (!b.TryGetPropertyValue("stop", out var v) || v == null) return [];
        if (v is JsonValue s && s.TryGetValue<string>(out var one)) return [one];
        if (v is JsonArray a && a.All(x => x is JsonValue xv && xv.TryGetValue<string>(out _))) return a.Select(x => x!.GetValue<string>()).ToList();
        throw new ServeRequestException("field \"stop\" must be a string or a list of strings", "stop");
    }

    private static SamplingRequest Sampling(JsonObject b)
    {
        bool json = false;
        if (b.TryGetPropertyValue("response_format", out var rf) && rf != null)
        {
            var type = (rf as JsonObject)?["type"] is JsonValue t && t.TryGetValue<string>(out var ts) ? ts : null;
            if (type is not ("text" or "json_object"))
                throw new ServeRequestException("response_format must be {\"type\": \"text\"} or {\"type\": \"json_object\"}", "response_format");
            json = type == "json_object";
        }
        _ = Get<string>(b, "user");   // logged with the request (Respond); a non-string is refused here, before decoding
        _ = StreamOptions(b);
        if (Get<bool>(b, "logprobs")) throw new ServeRequestException("logprobs is not supported", "logprobs");
        return new SamplingRequest
        {
            MaxTokens = GetInt(b, "max_completion_tokens") ?? GetInt(b, "max_tokens"),
            AutoTemperature = b["temperature"] is JsonValue auto && auto.TryGetValue<string>(out var a) && a == "auto",
            Temperature = b["temperature"] is JsonValue tv && tv.TryGetValue<string>(out var ts2)
                ? (ts2 == "auto" ? 1.0 : throw new ServeRequestException($"field \"temperature\" must be a number or \"auto\" (got \"{ts2}\")", "temperature"))
                : GetDouble(b, "temperature") ?? 1.0,
            TopP = GetDouble(b, "top_p") ?? 1.0,
            Stop = GetStop(b),
            Seed = GetInt(b, "seed"),
            N = GetInt(b, "n") ?? 1,
            JsonObject = json,
            MinTokens = GetInt(b, "min_tokens") ?? 0,
            PresencePenalty = GetDouble(b, "presence_penalty") ?? 0,
            FrequencyPenalty = GetDouble(b, "frequency_penalty") ?? 0,
            LogitBias = GetLogitBias(b),
        };
    }

    // stream_options: {"include_usage": bool} is the one option (OpenAI); anything else is refused, not ignored.
    private static bool StreamOptions(JsonObject b)
    {
        if (!b.TryGetPropertyValue("stream_options", out var v) || v == null) return false;
        if (v is not JsonObject so) throw new ServeRequestException("field \"stream_options\" must be an object", "stream_options");
        if (!Get<bool>(b, "stream")) throw new ServeRequestException("stream_options is only allowed when stream is true", "stream_options");
        OnlyKnown(so, "include_usage");
        return Get<bool>(so, "include_usage");
    }

    // OpenAI's logit_bias: {"token id": bias, …} (ids as strings, JSON object keys); range checks in ServedModel.Start.
    private static Dictionary<int, float>? GetLogitBias(JsonObject b)
    {
        if (!b.TryGetPropertyValue("logit_bias", out var v) || v == null) return null;
        if (v is not JsonObject o) throw new ServeRequestException("field \"logit_bias\" must be an object mapping token ids to biases", "logit_bias");
        var bias = new Dictionary<int, float>();
        foreach (var (k, x) in o)
        {
            if (!int.TryParse(k, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int id))
                throw new ServeRequestException($"logit_bias: key \"{k}\" is not a token id", "logit_bias");
            if (x is not JsonValue xv || !xv.TryGetValue<double>(out var d))
                throw new ServeRequestException($"logit_bias: the bias of token {k} must be a number", "logit_bias");
            bias[id] = (float)d;
        }
        return bias;
    }

    private static List<TemplateMessage> Messages(JsonObject b)
    {
        if (!b.TryGetPropertyValue("messages", out var v) || v is not JsonArray arr)
            throw new ServeRequestException("field \"messages\" is required and must be a list", "messages");
        if (arr.Count == 0) throw new ServeRequestException("messages must hold at least one message", "messages");
        var list = new List<TemplateMessage>();
        for (int i = 0; i < arr.Count; i++)
        {
            if (arr[i] is not JsonObject m) throw new ServeRequestException($"messages[{i}] must be an object", $"messages[{i}]");
            foreach (var (k, _) in m)
                if (k is not ("role" or "content" or "name")) throw new ServeRequestException($"messages[{i}]: unknown field \"{k}\"", $"messages[{i}].{k}");
            // OpenAI's participant name: prompts are rendered from role and content only, so a name would be dropped.
            if (m["name"] is { } nm && !(nm is JsonValue nv && nv.TryGetValue<string>(out var ns) && ns.Length == 0))
                throw new ServeRequestException($"messages[{i}].name is not supported (prompts are rendered from role and content only); put the name in the content", $"messages[{i}].name");
            var role = (m["role"] as JsonValue)?.TryGetValue<string>(out var r) == true ? r : null;
            if (role is not ("system" or "user" or "assistant" or "developer"))
                throw new ServeRequestException($"messages[{i}].role must be system, user, assistant or developer", $"messages[{i}].role");
            string content = m["content"] switch
            {
                JsonValue s when s.TryGetValue<string>(out var text) => text,
                JsonArray parts => string.Concat(parts.Select((p, j) => p is JsonObject po && (po["type"] as JsonValue)?.GetValue<string>() == "text"
                    && po["text"] is JsonValue tv && tv.TryGetValue<string>(out var t) ? t
                    : throw new ServeRequestException($"messages[{i}].content[{j}] must be {{\"type\":\"text\",\"text\":…}}", $"messages[{i}].content"))),
                _ => throw new ServeRequestException($"messages[{i}].content must be a string or a list of text parts", $"messages[{i}].content"),
            };
            list.Add(new TemplateMessage(role == "developer" ? "system" : role, content));
        }
        return list;
    }

    // ---- endpoints -------------------------------------------------------------------------------------------

    private static readonly string[] ChatFields =
        ["model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "n", "stream",
         "stream_options", "response_format", "user", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "min_tokens"];

    private static readonly string[] CompletionFields =
        ["model", "prompt", "max_tokens", "temperature", "top_p", "stop", "seed", "n", "stream", "stream_options", "user",
         "frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "echo", "min_tokens"];

    private static async Task Chat(HttpContext ctx, ServedModel served, ServeHostOptions o, ILogger log)
    {
        var b = await ReadBody(ctx, served);
        OnlyKnown(b, ChatFields);
        string model = Get<string>(b, "model") ?? served.Name;
        var adapter = served.Resolve(model);
        var messages = Messages(b);
        var sampling = Sampling(b);
        var (prompt, segments) = served.ChatPrompt(messages, model);
        if (o.LogPrompts) log.LogInformation("prompt {prompt}", JsonSerializer.Serialize(messages.Select(m => new { m.Role, m.Content })));
        sampling = await AutoTemperature(ctx, served, sampling, prompt, segments);
        var choices = served.Start(prompt, sampling, adapter, ctx.RequestAborted, segments);
        await Respond(ctx, b, choices, model, prompt.Length, chat: true, o, log);
    }

    private static async Task Completions(HttpContext ctx, ServedModel served, ServeHostOptions o, ILogger log)
    {
        var b = await ReadBody(ctx, served);
        OnlyKnown(b, CompletionFields);
        if (Get<bool>(b, "echo")) throw new ServeRequestException("echo is not supported", "echo");
        string model = Get<string>(b, "model") ?? served.Name;
        var adapter = served.Resolve(model);
        string prompt = b["prompt"] is JsonValue pv && pv.TryGetValue<string>(out var p) ? p
            : throw new ServeRequestException("field \"prompt\" is required and must be a string", "prompt");
        if (prompt.Length == 0) throw new ServeRequestException("prompt is empty", "prompt");
        var sampling = Sampling(b);
        var ids = served.CompletionPromptIds(prompt);
        if (o.LogPrompts) log.LogInformation("prompt {prompt}", prompt);
        sampling = await AutoTemperature(ctx, served, sampling, ids, null);
        var choices = served.Start(ids, sampling, adapter, ctx.RequestAborted);
        await Respond(ctx, b, choices, model, ids.Length, chat: false, o, log);
    }

    /// <summary><c>temperature: "auto"</c> resolved by the model's temperature head; the value used is sent back in the
    /// <c>X-InstructTune-Temperature</c> header (the OpenAI body has no field for it).</summary>
    private static async Task<SamplingRequest> AutoTemperature(HttpContext ctx, ServedModel served, SamplingRequest sampling, int[] prompt, byte[]? segments)
    {
        if (!sampling.AutoTemperature) return sampling;
        var resolved = await served.WithPredictedTemperature(sampling, prompt, segments, ctx.RequestAborted);
        ctx.Response.Headers[TemperatureHeader] = resolved.Temperature.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        return resolved;
    }

    /// <summary>The response header carrying the temperature a <c>temperature: "auto"</c> request was sampled at.</summary>
    public const string TemperatureHeader = "X-InstructTune-Temperature";

    private static async Task Respond(HttpContext ctx, JsonObject b, IReadOnlyList<ChoiceStream> choices, string model, int promptTokens,
        bool chat, ServeHostOptions o, ILogger log)
    {
        string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N")[..24];
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string kind = chat ? "chat.completion" : "text_completion";
        var ct = ctx.RequestAborted;
        if (Get<bool>(b, "stream"))
        {
            bool usage = StreamOptions(b);
            ctx.Response.ContentType = "text/event-stream";
            ctx.Response.Headers.CacheControl = "no-cache";
            async Task Send(object chunk)
            {
                await ctx.Response.WriteAsync("data: " + JsonSerializer.Serialize(chunk, Compact) + "\n\n", ct);
                await ctx.Response.Body.FlushAsync(ct);
            }
            object Chunk(int index, string? text, string? finish, bool first) => chat
                ? new { id, @object = "chat.completion.chunk", created, model, choices = new[] { new { index, delta = first ? (object)new { role = "assistant", content = text ?? "" } : text == null ? new { } : new { content = text }, finish_reason = finish } } }
                : new { id, @object = "text_completion", created, model, choices = new[] { new { index, text = text ?? "", finish_reason = finish } } };
            for (int i = 0; i < choices.Count; i++)
            {
                if (chat) await Send(Chunk(i, "", null, first: true));
                await foreach (var delta in choices[i].ReadDeltasAsync(ct)) await Send(Chunk(i, delta, null, first: false));
                await Send(Chunk(i, null, choices[i].FinishReason, first: false));
            }
            if (usage)
                await Send(new { id, @object = chat ? "chat.completion.chunk" : "text_completion", created, model, choices = Array.Empty<object>(), usage = Usage(choices, promptTokens) });
            await ctx.Response.WriteAsync("data: [DONE]\n\n", ct);
        }
        else
        {
            var texts = await Task.WhenAll(choices.Select(c => c.ReadAllAsync(ct)));
            if (o.LogPrompts) log.LogInformation("completion {texts}", JsonSerializer.Serialize(texts));
            object body = chat
                ? new { id, @object = kind, created, model, choices = choices.Select((c, i) => new { index = i, message = new { role = "assistant", content = texts[i] }, finish_reason = c.FinishReason }), usage = Usage(choices, promptTokens) }
                : new { id, @object = kind, created, model, choices = choices.Select((c, i) => new { index = i, text = texts[i], finish_reason = c.FinishReason }), usage = Usage(choices, promptTokens) };
            await ctx.Response.WriteAsJsonAsync(body, ct);
        }
        // OpenAI's "user" (an end-user id for abuse monitoring) goes into this per-request line of the server log.
        log.LogInformation("model {model} user {user} prompt_tokens {prompt} completion_tokens {completion} finish {finish}",
            model, Get<string>(b, "user") ?? "-", promptTokens, choices.Sum(c => c.CompletionTokens), string.Join(",", choices.Select(c => c.FinishReason)));
    }

    private static object Usage(IReadOnlyList<ChoiceStream> choices, int promptTokens)
    {
        int completion = choices.Sum(c => c.CompletionTokens);
        return new { prompt_tokens = promptTokens, completion_tokens = completion, total_tokens = promptTokens + completion };
    }

    private static async Task Embeddings(HttpContext ctx, ServedModel served, ILogger log)
    {
        var b = await ReadBody(ctx, served);
        OnlyKnown(b, "model", "input", "encoding_format", "user");
        string model = Get<string>(b, "model") ?? served.Name;
        var adapter = served.Resolve(model);
        // The OpenAI SDKs ask for base64 (little-endian float32 bytes) by default; both forms are served.
        string format = Get<string>(b, "encoding_format") ?? "float";
        if (format is not ("float" or "base64")) throw new ServeRequestException("encoding_format must be \"float\" or \"base64\"", "encoding_format");
        List<string> inputs = b["input"] switch
        {
            JsonValue s when s.TryGetValue<string>(out var one) => [one],
            JsonArray a when a.Count > 0 && a.All(x => x is JsonValue xv && xv.TryGetValue<string>(out _)) => a.Select(x => x!.GetValue<string>()).ToList(),
            _ => throw new ServeRequestException("field \"input\" must be a string or a non-empty list of strings", "input"),
        };
        int maxPos = served.Model.Config.MaxPositionEmbeddings;
        var ids = inputs.Select((t, i) =>
        {
            var e = served.CompletionPromptIds(t);
            if (e.Length == 0) throw new ServeRequestException($"input[{i}] encodes to no tokens", "input");
            if (e.Length > maxPos) throw new ServeRequestException($"input[{i}] has {e.Length} tokens; the model's context is {maxPos}", "input", "context_length_exceeded");
            return e;
        }).ToList();
        string user = Get<string>(b, "user") ?? "-";
        var vectors = await served.Engine.RunBetweenSteps(m => ids.Select(x => m.MeanPooledHidden(x, adapter)).ToList(), ctx.RequestAborted);
        await ctx.Response.WriteAsJsonAsync(new
        {
            @object = "list",
            model,
            data = vectors.Select((v, i) => new
            {
                @object = "embedding", index = i,
                embedding = format == "base64" ? (object)Convert.ToBase64String(System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan())) : v,
            }),
            usage = new { prompt_tokens = ids.Sum(x => x.Length), total_tokens = ids.Sum(x => x.Length) },
        });
        log.LogInformation("model {model} user {user} embeddings {count} prompt_tokens {prompt}", model, user, ids.Count, ids.Sum(x => x.Length));
    }

    private static async Task LoadAdapter(HttpContext ctx, ServedModel served, ServeHostOptions o, ILogger log)
    {
        if (!o.AllowAdapterLoading)
            throw new ServeRequestException("adapter loading is off; start itune serve with --allow-adapter-loading (serve.allow_adapter_loading)", null, "forbidden", 403);
        var b = await ReadBody(ctx, served);
        OnlyKnown(b, "name", "path");
        string name = Get<string>(b, "name") ?? throw new ServeRequestException("field \"name\" is required", "name");
        string path = Get<string>(b, "path") ?? throw new ServeRequestException("field \"path\" is required", "path");
        try { served.AddAdapter(name, path); }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or JsonException or KeyNotFoundException or FormatException)
        {
            throw new ServeRequestException($"cannot load adapter \"{name}\" from {path}: {e.Message}", "path");
        }
        log.LogInformation("loaded adapter {name} from {path}", name, path);
        ctx.Response.StatusCode = 201;
        await ctx.Response.WriteAsJsonAsync(new { id = name, @object = "model", created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), owned_by = "instructtune", root = served.Name });
    }
}
