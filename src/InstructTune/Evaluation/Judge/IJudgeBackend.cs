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
/// Any OpenAI-compatible chat-completions endpoint as a Microsoft.Extensions.AI <see cref="IChatClient"/>
/// (<see cref="Serving.ChatClients.Create"/>: the OpenAI .NET SDK's client, its own retries off so Polly in
/// <see cref="LlmJudge"/> retries and honours Retry-After; the body read is capped at <c>max_response_bytes</c>).
/// Temperature 0 for repeatable judgements; with <c>json_mode</c> the request asks for a JSON object
/// (<c>response_format</c>), which the answer parser reads first.
/// </summary>
public sealed class OpenAiJudgeBackend : IJudgeBackend, IDisposable
{
    private readonly IChatClient client;
    private readonly bool json;

    public OpenAiJudgeBackend(JudgeConfig config)
    {
        client = Serving.ChatClients.Create(config.BaseUrl, config.Model, config.ApiKey,
            networkTimeout: config.AttemptTimeout + TimeSpan.FromSeconds(5), maxResponseBytes: config.MaxResponseBytes);
        json = config.JsonMode;
        Name = config.Model;
    }

    public string Name { get; }

    public async Task<string> CompleteAsync(string system, string user, CancellationToken cancellationToken)
    {
        Microsoft.Extensions.AI.ChatMessage[] messages = [new(ChatRole.System, system), new(ChatRole.User, user)];
        var options = new ChatOptions { Temperature = 0f, MaxOutputTokens = 512, ResponseFormat = json ? ChatResponseFormat.Json : null };
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

/// <summary>A local InstructTune model (or any <see cref="ITextGenerator"/>) as the judge: system and user
/// message joined into one prompt.</summary>
public sealed class LocalJudgeBackend(ITextGenerator generator, string name) : IJudgeBackend
{
    public string Name { get; } = name;

    public Task<string> CompleteAsync(string system, string user, CancellationToken cancellationToken) =>
        Task.Run(() => generator.Generate([system + "\n\n" + user], cancellationToken)[0], cancellationToken);
}
