using System.ClientModel;
using System.ClientModel.Primitives;
using OpenAI;
using OpenAI.Chat;

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
/// Any OpenAI-compatible chat-completions endpoint through the OpenAI .NET SDK. The SDK's own retries are turned
/// off (Polly in <see cref="LlmJudge"/> retries, so request counts stay bounded and Retry-After is ours to honour);
/// temperature 0 for repeatable judgements.
/// </summary>
public sealed class OpenAiJudgeBackend : IJudgeBackend
{
    private readonly ChatClient client;

    public OpenAiJudgeBackend(JudgeConfig config)
    {
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(config.BaseUrl),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = config.AttemptTimeout + TimeSpan.FromSeconds(5),
        };
        // Local OpenAI-compatible servers often need no key, but the SDK insists on one.
        client = new ChatClient(config.Model, new ApiKeyCredential(config.ApiKey ?? "no-key"), options);
        Name = config.Model;
    }

    public string Name { get; }

    public async Task<string> CompleteAsync(string system, string user, CancellationToken cancellationToken)
    {
        ChatMessage[] messages = [new SystemChatMessage(system), new UserChatMessage(user)];
        var options = new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = 512 };
        try
        {
            ChatCompletion completion = (await client.CompleteChatAsync(messages, options, cancellationToken)).Value;
            return string.Concat(completion.Content.Select(p => p.Text));
        }
        // A 200 whose body is not JSON, or JSON of the wrong shape, surfaces from the SDK's deserializer as one of
        // these; name it for what it is so the judge retries it and reports it plainly.
        catch (Exception ex) when (ex is System.Text.Json.JsonException or ArgumentException or InvalidOperationException
                                       or KeyNotFoundException or FormatException or NullReferenceException)
        {
            throw new JudgeResponseException($"malformed response from the endpoint ({ex.GetType().Name})", ex);
        }
    }
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
