using Microsoft.Extensions.AI;

namespace InstructTune.Evaluation.Robustness;

/// <summary>
/// Paraphrase by round-trip translation through any chat endpoint (a Microsoft.Extensions.AI <see cref="IChatClient"/>:
/// <c>Serving.ChatClients.Create("local:DIR[+ADAPTER]")</c> in this process, or an OpenAI-compatible URL): the text
/// is translated into the pivot language and the translation back into English, greedy (temperature 0), each answer
/// trimmed and cut at its first blank line. The instruction's meaning is meant to survive and its wording not; a
/// round trip that comes back empty or unchanged gives no variant (<see cref="RoundTripAsync"/> returns null).
/// </summary>
public sealed class BackTranslator(IChatClient client, string pivot = "French", int maxTokens = 200)
{
    public const string System = "You are a translator. Reply with the translation only, no notes.";

    public string Pivot { get; } = pivot;

    public async Task<string> TranslateAsync(string text, string language, CancellationToken ct = default)
    {
        var response = await client.GetResponseAsync(
            [new ChatMessage(ChatRole.System, System), new ChatMessage(ChatRole.User, $"Translate into {language}:\n\n{text}")],
            new ChatOptions { Temperature = 0f, MaxOutputTokens = maxTokens }, ct);
        var answer = response.Text.Trim();
        int blank = answer.IndexOf("\n\n", StringComparison.Ordinal);
        return blank > 0 ? answer[..blank].Trim() : answer;
    }

    /// <summary>English → pivot → English; null when nothing usable came back.</summary>
    public async Task<string?> RoundTripAsync(string text, CancellationToken ct = default)
    {
        var there = await TranslateAsync(text, Pivot, ct);
        if (there.Length == 0) return null;
        var back = await TranslateAsync(there, "English", ct);
        return back.Length == 0 || back == text.Trim() ? null : back;
    }
}
