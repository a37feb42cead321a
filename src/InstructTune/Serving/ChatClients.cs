// One way to get a chat endpoint: Microsoft.Extensions.AI's IChatClient, for remote OpenAI-compatible servers
// (`https://…/v1`, including a running `itune serve`) and for InstructTune models in this process (`local:DIR`),
// so the judge, back-translation and data generation have a single code path and their tests need no network.
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Runtime.CompilerServices;
using InstructTune.Evaluation.ModelBackends;
using Microsoft.Extensions.AI;
using OpenAI;
using TemplateMessage = InstructTune.Templates.ChatMessage;

namespace InstructTune.Serving;

public static class ChatClients
{
    public const string LocalPrefix = "local:";

    /// <summary>
    /// An <see cref="IChatClient"/> for an endpoint:
    /// <list type="bullet">
    /// <item><c>local:MODEL_DIR</c> or <c>local:MODEL_DIR+ADAPTER_DIR</c>: the checkpoint (with a LoRA adapter) served in
    /// this process by the same engine as <c>itune serve</c> (continuous batching, the model's chat template); no network;</item>
    /// <item><c>http://…/v1</c> or <c>https://…/v1</c>: an OpenAI-compatible server through the OpenAI .NET SDK, asking for
    /// <paramref name="model"/> with <paramref name="apiKey"/> (none needed for a key-less `itune serve`).</item>
    /// </list>
    /// The caller disposes the client (for <c>local:</c> that unloads the model).
    /// </summary>
    /// <paramref name="maxResponseBytes"/> (remote only, 0 = no cap) bounds the body read from the server
    /// (<see cref="ResponseSizeLimitHandler"/>).
    /// <paramref name="completionFallback"/> (local only): a model with no chat template and no recorded prompt format
    /// gets its messages as plain completion text (<see cref="PromptFormatter.Raw"/>) instead of refusing them.
    public static IChatClient Create(string endpoint, string? model = null, string? apiKey = null, ServeLimits? limits = null,
        TimeSpan? networkTimeout = null, long maxResponseBytes = 0, bool completionFallback = false)
    {
        if (endpoint.StartsWith(LocalPrefix, StringComparison.Ordinal))
        {
            var spec = endpoint[LocalPrefix.Length..];
            var parts = spec.Split('+', 2);
            if (parts[0].Length == 0) throw new ArgumentException($"endpoint \"{endpoint}\": give local:MODEL_DIR or local:MODEL_DIR+ADAPTER_DIR");
            var adapters = parts.Length == 2 ? new[] { ("adapter", parts[1]) } : [];
            var served = ServedModel.Load(parts[0], adapters, limits ?? new ServeLimits());
            return new LocalChatClient(served, ownsModel: true, defaultModel: parts.Length == 2 ? "adapter" : null,
                completionFallback: completionFallback);
        }
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"endpoint \"{endpoint}\" is neither local:DIR nor an http(s) URL");
        if (string.IsNullOrEmpty(model)) throw new ArgumentException($"endpoint {endpoint}: a model name is needed");
        var options = new OpenAIClientOptions
        {
            Endpoint = uri,
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = networkTimeout ?? TimeSpan.FromMinutes(5),
        };
        if (maxResponseBytes > 0)
            options.Transport = new HttpClientPipelineTransport(new HttpClient(new ResponseSizeLimitHandler(maxResponseBytes)) { Timeout = Timeout.InfiniteTimeSpan });
        return new OpenAI.Chat.ChatClient(model, new ApiKeyCredential(apiKey ?? "no-key"), options).AsIChatClient();
    }
}

/// <summary>
/// <see cref="IChatClient"/> over a <see cref="ServedModel"/> in this process: ChatOptions map to the OpenAI request
/// fields `itune serve` takes (ModelId picks an adapter by name, Temperature, TopP, MaxOutputTokens, StopSequences,
/// Seed, PresencePenalty, FrequencyPenalty, ResponseFormat JSON), defaults as OpenAI's (temperature 1);
/// AdditionalProperties["min_tokens"] (an int) is vLLM's min_tokens. Options that cannot act here (TopK, tools, a JSON
/// schema, other additional properties, non-text message contents) are refused naming the option, never dropped.
/// </summary>
/// <paramref name="completionFallback"/>: a model without a chat template or recorded prompt format is sent its
/// messages as plain completion text (<see cref="PromptFormatter.Raw"/>: a lone user message as is, several as
/// "role: content" lines) rather than refused.
public sealed class LocalChatClient(ServedModel served, bool ownsModel = false, string? defaultModel = null,
    bool completionFallback = false) : IChatClient
{
    public ServedModel Served { get; } = served;

    /// <summary>The ChatOptions.AdditionalProperties key of vLLM's min_tokens.</summary>
    public const string MinTokensProperty = "min_tokens";

    /// <summary>The model's context: prompt and answer together hold at most this many tokens.</summary>
    public int ContextTokens => Served.Model.Config.MaxPositionEmbeddings;

    private PromptFormatter? Fallback => completionFallback ? PromptFormatter.Raw : null;

    /// <summary>How chat requests for <paramref name="model"/> (default: this client's) become prompt text, for logs.</summary>
    public string DescribeFormat(string? model = null)
    {
        model ??= defaultModel ?? Served.Name;
        return Served.FormatOf(model)?.Describe()
            ?? (completionFallback ? "plain completion (raw text: no chat template and no recorded prompt format)" : "none (chat requests are refused)");
    }

    /// <summary>Prompt tokens <paramref name="messages"/> take once rendered for <paramref name="model"/>, as sent.</summary>
    public int CountPromptTokens(IEnumerable<ChatMessage> messages, string? model = null) =>
        Served.ChatPromptIds(messages.Select(m => new TemplateMessage(m.Role.Value, m.Text)).ToList(), model ?? defaultModel ?? Served.Name, Fallback).Length;

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var (choices, modelName) = Start(messages, options, cancellationToken);
        var texts = await Task.WhenAll(choices.Select(c => c.ReadAllAsync(cancellationToken)));
        var response = new ChatResponse(texts.Select(t => new ChatMessage(ChatRole.Assistant, t)).ToList())
        {
            ModelId = modelName,
            ResponseId = "chatcmpl-" + Guid.NewGuid().ToString("N"),
            FinishReason = choices[0].FinishReason == "stop" ? ChatFinishReason.Stop : ChatFinishReason.Length,
            Usage = new UsageDetails
            {
                InputTokenCount = choices[0].Sequence.PromptTokens,
                OutputTokenCount = choices.Sum(c => c.CompletionTokens),
                TotalTokenCount = choices[0].Sequence.PromptTokens + choices.Sum(c => c.CompletionTokens),
            },
        };
        return response;
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var (choices, modelName) = Start(messages, options, cancellationToken);
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var choice = choices[0];
        await foreach (var delta in choice.ReadDeltasAsync(cancellationToken))
            yield return new ChatResponseUpdate(ChatRole.Assistant, delta) { ModelId = modelName, ResponseId = id };
        yield return new ChatResponseUpdate(ChatRole.Assistant, "")
        {
            ModelId = modelName, ResponseId = id,
            FinishReason = choice.FinishReason == "stop" ? ChatFinishReason.Stop : ChatFinishReason.Length,
        };
    }

    private (IReadOnlyList<ChoiceStream> Choices, string Model) Start(IEnumerable<ChatMessage> messages, ChatOptions? o,
        CancellationToken ct)
    {
        string modelName = o?.ModelId ?? defaultModel ?? Served.Name;
        var adapter = Served.Resolve(modelName);
        RefuseUnused(messages, o);
        var list = messages.Select(m => new TemplateMessage(m.Role.Value, m.Text)).ToList();
        var request = new SamplingRequest
        {
            MaxTokens = o?.MaxOutputTokens,
            Temperature = o?.Temperature ?? 1.0,
            TopP = o?.TopP ?? 1.0,
            Stop = o?.StopSequences?.ToList() ?? [],
            Seed = o?.Seed is { } s ? unchecked((int)s) : null,
            JsonObject = o?.ResponseFormat is ChatResponseFormatJson,
            MinTokens = o?.AdditionalProperties?.TryGetValue(MinTokensProperty, out var mt) == true && mt is int m ? m : 0,
            PresencePenalty = o?.PresencePenalty ?? 0,
            FrequencyPenalty = o?.FrequencyPenalty ?? 0,
        };
        var (ids, segments) = Served.ChatPrompt(list, modelName, Fallback);
        return (Served.Start(ids, request, adapter, ct, segments), modelName);
    }

    // What the ChatOptions / messages ask for that this endpoint cannot do is an error naming it (the served request
    // has no such setting), as `itune serve` answers 400 for a field it does not take.
    private static void RefuseUnused(IEnumerable<ChatMessage> messages, ChatOptions? o)
    {
        static void No(bool given, string what, string why) { if (given) throw new ServeRequestException($"{what}: {why}", what); }
        foreach (var (m, i) in messages.Select((m, i) => (m, i)))
            No(m.Contents.Any(c => c is not TextContent), $"messages[{i}].contents",
                $"only text is rendered into the prompt; found {string.Join(", ", m.Contents.Where(c => c is not TextContent).Select(c => c.GetType().Name).Distinct())}");
        if (o == null) return;
        No(o.TopK != null, "ChatOptions.TopK", "not an OpenAI sampling setting this endpoint takes (use TopP)");
        No(o.Tools is { Count: > 0 }, "ChatOptions.Tools", "tool calling is not supported by the local: endpoint");
        No(o.ResponseFormat is ChatResponseFormatJson { Schema: not null }, "ChatOptions.ResponseFormat",
            "a JSON schema cannot be enforced (decoding is constrained to one JSON object); use ChatResponseFormat.Json");
        foreach (var key in o.AdditionalProperties?.Keys ?? [])
            No(key != MinTokensProperty, $"ChatOptions.AdditionalProperties[\"{key}\"]", $"not a setting of the local: endpoint (it takes \"{MinTokensProperty}\")");
        No(o.AdditionalProperties?.TryGetValue(MinTokensProperty, out var mt) == true && mt is not int, $"ChatOptions.AdditionalProperties[\"{MinTokensProperty}\"]", "must be an int");
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey == null && serviceType.IsInstanceOfType(this) ? this
        : serviceKey == null && serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("instructtune-local", null, Served.Name)
        : null;

    public void Dispose()
    {
        if (ownsModel) Served.Dispose();
    }
}
