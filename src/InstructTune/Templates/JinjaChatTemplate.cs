using InstructTune.Templates.Jinja;

namespace InstructTune.Templates;

/// <summary>
/// A chat template written in Jinja, rendered as transformers' apply_chat_template does: variables are
/// messages, tools (None), documents (None), add_generation_prompt and the tokenizer's special tokens
/// (bos_token, eos_token, unk_token, pad_token … — only those that are set), plus any extra variables.
/// Provenance rule: characters that come from a message's "content" string keep that message's index
/// through concatenation, trim/strip, slicing, split and length-preserving case changes; every other
/// character (headers, role names, separators, special tokens, tojson output) is template text (-1).
/// </summary>
public sealed class JinjaChatTemplate : IChatTemplate
{
    private readonly JinjaTemplate _template;

    /// <param name="source">Jinja source.</param>
    /// <param name="specialTokens">bos_token, eos_token, … as strings; null values are left undefined.</param>
    public JinjaChatTemplate(string source, IReadOnlyDictionary<string, object?>? specialTokens = null, RenderLimits? limits = null, Func<DateTime>? clock = null)
    {
        Source = source;
        try
        {
            _template = new JinjaTemplate(source) { Limits = limits ?? RenderLimits.Default, Clock = clock ?? (() => DateTime.Now) };
        }
        catch (TemplateSyntaxException e)
        {
            throw new ChatTemplateException(e.Message);
        }
        SpecialTokens = specialTokens?.Where(kv => kv.Value is not null).ToDictionary(kv => kv.Key, kv => kv.Value)
            ?? new Dictionary<string, object?>();
    }

    public string Source { get; }

    /// <summary>Whether the template marks assistant output with <c>{% generation %}</c> blocks.</summary>
    public bool HasGenerationMarkers => System.Text.RegularExpressions.Regex.IsMatch(Source, @"\{%-?\s*generation\s*-?%\}");
    public IReadOnlyDictionary<string, object?> SpecialTokens { get; }

    public RenderedChat Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = false) =>
        Render(messages.Select((m, i) => (IReadOnlyDictionary<object, object?>)new Dictionary<object, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            addGenerationPrompt);

    /// <summary>
    /// Renders messages given as field dicts (role, content and anything else a template reads, such as
    /// tool_calls), with optional extra variables (tools, documents, date_string, …).
    /// </summary>
    public RenderedChat Render(IReadOnlyList<IReadOnlyDictionary<object, object?>> messages, bool addGenerationPrompt,
        IReadOnlyDictionary<string, object?>? extraVariables = null)
    {
        var msgs = messages.Select((m, i) => (object?)TemplateValues.Message(m, i)).ToList();
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = msgs,
            ["tools"] = null,
            ["documents"] = null,
            ["add_generation_prompt"] = addGenerationPrompt,
        };
        foreach (var (k, v) in SpecialTokens) vars[k] = v;
        if (extraVariables is not null) foreach (var (k, v) in extraVariables) vars[k] = v;
        var rendered = _template.Render(vars, out var generation);
        var roles = messages.Select(m => m.TryGetValue("role", out var r) && Py.IsString(r) ? Py.Text(r) : null).ToList();
        return ToChat(rendered, roles) with { GenerationRanges = generation };
    }

    /// <summary>Turns tagged output into spans that cover the text in order (gaps are template text).</summary>
    internal static RenderedChat ToChat(object rendered, IReadOnlyList<string?> roles)
    {
        string text = Py.Text(rendered);
        var spans = new List<RenderedSpan>();
        int pos = 0;
        if (rendered is TaggedText t)
            foreach (var tag in t.Tags)
            {
                if (tag.Start > pos) spans.Add(new RenderedSpan(pos, tag.Start - pos, -1, null));
                spans.Add(new RenderedSpan(tag.Start, tag.Length, tag.MessageIndex, roles[tag.MessageIndex]));
                pos = tag.Start + tag.Length;
            }
        if (pos < text.Length) spans.Add(new RenderedSpan(pos, text.Length - pos, -1, null));
        return new RenderedChat(text, spans);
    }
}
