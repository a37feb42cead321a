using InstructTune.Data.Records;

namespace InstructTune.Data.Templating;

/// <summary>
/// Renders a record (single-turn instruction/input/output, or a chat) to training text with segment spans.
/// Each assistant turn's span includes the template's end-of-turn marker text (e.g. <c>&lt;|im_end|&gt;</c>), so the
/// model learns to close its turn; the tokenizer's EOS id is appended after the text by <see cref="ExampleTokenizer"/>.
/// </summary>
public interface IPromptTemplate
{
    string Name { get; }
    RenderedText Render(InstructionRecord record);
}

/// <summary>The built-in templates by name, and user format strings.</summary>
public static class PromptTemplates
{
    public static IReadOnlyList<string> Names { get; } = ["alpaca", "chatml", "llama2", "llama3"];

    /// <summary>A built-in by name, or a format string when the name contains <c>{output}</c>.</summary>
    public static IPromptTemplate Get(string name) => name.ToLowerInvariant() switch
    {
        "alpaca" => new AlpacaTemplate(),
        "chatml" => new ChatMarkupTemplate(ChatMarkupTemplate.ChatMl),
        "llama3" => new ChatMarkupTemplate(ChatMarkupTemplate.Llama3),
        "llama2" => new Llama2Template(),
        _ when name.Contains("{output}") => new FormatStringTemplate(name),
        _ => throw new ArgumentException($"unknown template '{name}' (expected {string.Join(", ", Names)}, or a format string with {{instruction}}, {{input}} and {{output}})"),
    };

    /// <summary>Plain text records are the same under every template: all of it is learned.</summary>
    internal static RenderedText PlainText(InstructionRecord r) => new RenderBuilder().Add(r.Output, Segment.Response).Build();
}
