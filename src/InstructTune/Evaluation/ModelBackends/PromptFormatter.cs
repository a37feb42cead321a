using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Evaluation.Metrics;
using InstructTune.Templates;

namespace InstructTune.Evaluation.ModelBackends;

/// <summary>
/// Turns a suite's instruction (or a few-shot / multi-turn prompt the evaluators built) into the text the model
/// sees, i.e. the <c>--template</c> of <c>itune eval model</c>:
/// <list type="bullet">
/// <item><c>raw</c>: the instruction as is (base models, or prompts that already carry their format);</item>
/// <item><c>chat</c>: the tokenizer's own chat template, one user message, with the generation prompt;</item>
/// <item><c>alpaca</c>, <c>chatml</c>, <c>llama2</c>, <c>llama3</c> or a format string: the data area's
/// <see cref="PromptTemplates"/>, cut where the response would start, so a model sees exactly the prefix it was
/// fine-tuned on;</item>
/// <item><c>auto</c> (default): <c>chat</c> when the tokenizer folder has a chat template, else <c>raw</c>.</item>
/// </list>
/// <see cref="AddSpecialTokens"/> says whether the tokenizer should add its BOS: chat templates write their own
/// (as transformers' apply_chat_template does), everything else relies on the tokenizer's post-processor.
/// </summary>
public sealed class PromptFormatter
{
    private readonly Func<string, string> _format;

    public string Name { get; }
    public bool AddSpecialTokens { get; }

    private PromptFormatter(string name, Func<string, string> format, bool addSpecialTokens)
    {
        Name = name; _format = format; AddSpecialTokens = addSpecialTokens;
    }

    public string Format(string instruction) => _format(instruction);

    public static PromptFormatter Raw { get; } = new("raw", s => s, true);

    /// <summary>The formatter named by <c>--template</c>; <paramref name="tokenizerDir"/> supplies the chat template.</summary>
    public static PromptFormatter Create(string? name, string tokenizerDir)
    {
        name = string.IsNullOrWhiteSpace(name) ? "auto" : name;
        switch (name.ToLowerInvariant())
        {
            case "raw": return Raw;
            case "auto": return HasChatTemplate(tokenizerDir) ? Chat(tokenizerDir) : Raw;
            case "chat": return Chat(tokenizerDir);
        }
        IPromptTemplate template;
        try { template = PromptTemplates.Get(name); }
        catch (ArgumentException ex) { throw new EvalInputException($"--template: {ex.Message}; or raw, chat, auto"); }
        return new PromptFormatter(template.Name, instruction => PrefixOf(template, instruction), true);
    }

    private static PromptFormatter Chat(string dir)
    {
        IChatTemplate template;
        try { template = ChatTemplateLoader.FromTokenizer(dir); }
        catch (ChatTemplateException ex) { throw new EvalInputException($"--template chat: {ex.Message}"); }
        return new PromptFormatter("chat", instruction => template.Render([new ChatMessage("user", instruction)], addGenerationPrompt: true).Text, false);
    }

    // Render with a one-character response and keep the text before it: templates put the response right after
    // their prompt text, and what follows it (end-of-turn markers) must not be in the prompt.
    private static string PrefixOf(IPromptTemplate template, string instruction)
    {
        const string Marker = "\u0001";
        var rendered = template.Render(new InstructionRecord(instruction, "", Marker, "eval"));
        var response = rendered.Spans.FirstOrDefault(s => s.Segment == Segment.Response);
        int at = response.Length > 0 ? response.Start : rendered.Text.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0) throw new InvalidOperationException($"template {template.Name}: cannot find where the response starts");
        return rendered.Text[..at];
    }

    private static bool HasChatTemplate(string dir)
    {
        try { ChatTemplateLoader.FromTokenizer(dir); return true; }
        catch (ChatTemplateException) { return false; }
    }
}
