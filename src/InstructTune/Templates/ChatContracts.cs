namespace InstructTune.Templates;

/// <summary>One chat message as chat templates see it.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// A [Start, Start+Length) span of rendered text and where it came from: the index of the message whose
/// content produced it (-1 for template text such as role headers) and that message's role.
/// </summary>
public sealed record RenderedSpan(int Start, int Length, int MessageIndex, string? Role);

/// <summary>Rendered conversation text with its provenance spans (covering the text, in order).</summary>
/// <param name="GenerationRanges">[Start, End) ranges the template wrote inside <c>{% generation %}</c> blocks (empty when it has none).</param>
public sealed record RenderedChat(string Text, IReadOnlyList<RenderedSpan> Spans, IReadOnlyList<(int Start, int End)>? GenerationRanges = null);

/// <summary>A chat template: a tokenizer_config.json Jinja template or a built-in one (alpaca, chatml, …).</summary>
public interface IChatTemplate
{
    /// <summary>Renders; throws <see cref="ChatTemplateException"/> when the template raises or exceeds its limits.</summary>
    RenderedChat Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false);
}

public sealed class ChatTemplateException(string message) : InstructTune.Common.InputException(message);
