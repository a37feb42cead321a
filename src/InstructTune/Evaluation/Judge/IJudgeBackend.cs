using InstructTune.Evaluation.Metrics;
using Microsoft.Extensions.AI;

namespace InstructTune.Evaluation.Judge;

/// <summary>One judge call: a system and a user message in, the judge's raw text out. Throws on transport
/// failure; <see cref="LlmJudge"/> owns retries, timeouts and parsing.</summary>
public interface IJudgeBackend
{
    /// <summary>Identifies the judge in cache keys (endpoint model name, or a local model's name).</summary>
    string Name { get; }
    Task<string> CompleteAsync(string system, string user, CancellationToken cancellationToken);
}

/// <summary>
/// Any chat endpoint as a Microsoft.Extensions.AI <see cref="IChatClient"/> from <see cref="Serving.ChatClients.Create"/>:
/// <c>local:MODEL_DIR[+ADAPTER_DIR]</c> (the checkpoint served in this process by <c>itune serve</c>'s engine, no
/// network) or an OpenAI-compatible base URL (the OpenAI .NET SDK's client, its own retries off so Polly in
/// <see cref="LlmJudge"/> retries and honours Retry-After; the body read is capped at <c>max_response_bytes</c>).
/// Temperature 0 for repeatable judgements; with <c>json_mode</c> the request asks for a JSON object
/// (<c>response_format</c>; a local model decodes under a JSON grammar), which the answer parser reads first.
/// </summary>
public sealed class ChatClientJudgeBackend : IJudgeBackend, IDisposable
{
    private readonly IChatClient client;
    private readonly bool json;
    private readonly int maxTokens;

    public ChatClientJudgeBackend(JudgeConfig config)
    {
        bool local = config.BaseUrl.StartsWith(Serving.ChatClients.LocalPrefix, StringComparison.Ordinal);
        try
        {
            client = Serving.ChatClients.Create(config.BaseUrl, config.Model, config.ApiKey,
                networkTimeout: config.AttemptTimeout + TimeSpan.FromSeconds(5), maxResponseBytes: config.MaxResponseBytes);
        }
        catch (Exception ex) when (local && ex is ArgumentException or IOException or InvalidDataException or FormatException
                                       or System.Text.Json.JsonException or KeyNotFoundException)
        {
            throw new EvalInputException($"judge {config.BaseUrl}: {ex.Message}");
        }
        json = config.JsonMode;
        // A local judge answers within its own context window; 512 new tokens would not fit a small model's.
        maxTokens = local && client is Serving.LocalChatClient l ? Math.Clamp(l.Served.Model.Config.MaxPositionEmbeddings / 4, 16, 512) : 512;
        Name = local ? config.BaseUrl : config.Model;
    }

    public string Name { get; }

    public async Task<string> CompleteAsync(string system, string user, CancellationToken cancellationToken)
    {
        Microsoft.Extensions.AI.ChatMessage[] messages = [new(ChatRole.System, system), new(ChatRole.User, user)];
        var options = new ChatOptions { Temperature = 0f, MaxOutputTokens = maxTokens, ResponseFormat = json ? ChatResponseFormat.Json : null };
        try
        {
            var response = await client.GetResponseAsync(messages, options, cancellationToken);
            return response.Text;
        }
        // A 200 whose body is not JSON, or JSON of the wrong shape, surfaces from the SDK's deserializer as one of
        // these; name it for what it is so the judge retries it and reports it plainly.
        catch (Exception ex) when (ex is System.Text.Json.JsonException or ArgumentException or InvalidOperationException
                                       or KeyNotFoundException or FormatException or NullReferenceException)
        {
            throw new JudgeResponseException($"malformed response from the endpoint ({ex.GetType().Name})", ex);
        }
    }

    public void Dispose() => client.Dispose();
}

/// <summary>The endpoint answered 2xx but the body could not be read as a chat completion.</summary>
public sealed class JudgeResponseException(string message, Exception inner) : InstructTune.Common.InputException(message, inner);
