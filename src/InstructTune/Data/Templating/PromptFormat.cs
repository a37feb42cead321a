using System.Text.Json.Serialization;
using InstructTune.Data.Records;
using InstructTune.Templates;

namespace InstructTune.Data.Templating;

/// <summary>
/// The prompt format a run trains with (recipe keys <c>data.template</c>, <c>data.train_on</c>, <c>data.train_on_eos</c>):
/// a built-in template (alpaca, chatml, llama2, llama3), a format string, <c>chat</c> (the tokenizer's own Jinja chat
/// template, from chat_template.jinja or tokenizer_config.json) or a path to a <c>.jinja</c> file. It renders records
/// with the turn policies applied and says how the tokenizer must treat BOS/EOS: a chat template writes its own
/// special tokens (transformers' apply_chat_template tokenizes with add_special_tokens=False), the built-ins get BOS
/// from the tokenizer and EOS appended.
/// </summary>
public sealed class PromptFormat : IPromptTemplate
{
    public const string Chat = "chat";

    private readonly IPromptTemplate _template;

    private PromptFormat(IPromptTemplate template, string spec, JinjaChatTemplate? chat, TrainOn trainOn, TrainOnEos eos)
    {
        _template = template;
        Spec = spec;
        ChatTemplate = chat;
        TrainOn = trainOn;
        TrainOnEos = eos;
    }

    /// <summary>The value of data.template this format came from.</summary>
    public string Spec { get; }
    public string Name => _template.Name;
    /// <summary>The Jinja template when the format is a chat template; null for built-ins and format strings.</summary>
    public JinjaChatTemplate? ChatTemplate { get; }
    public TrainOn TrainOn { get; }
    public TrainOnEos TrainOnEos { get; }
    public bool IsChatTemplate => ChatTemplate != null;
    /// <summary>The instruction marker tokens [open, close] every instruction span is wrapped in
    /// (model.instruction_aware.marker_tokens, <see cref="InstructionMarkerText"/>), or null.</summary>
    public IReadOnlyList<string>? Markers { get; private init; }

    /// <summary>This format with its instruction spans wrapped in <paramref name="markers"/> [open, close] (empty or null: as is).</summary>
    public PromptFormat WithMarkers(IReadOnlyList<string>? markers) => markers is not { Count: > 0 } ? this
        : markers.Count != 2 ? throw new ArgumentException($"instruction markers are [open, close]: got {markers.Count}")
        : new PromptFormat(_template, Spec, ChatTemplate, TrainOn, TrainOnEos) { Markers = [.. markers] };

    /// <summary>Whether a template spec names a Jinja chat template (<c>chat</c> or a .jinja file).</summary>
    public static bool IsChatSpec(string spec) =>
        spec.Equals(Chat, StringComparison.OrdinalIgnoreCase) || spec.EndsWith(".jinja", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Resolves a template spec. Throws <see cref="ArgumentException"/> naming what is wrong (unknown name, no chat
    /// template in the tokenizer folder, a Jinja syntax error, a train_on_eos policy on a template without turns).
    /// </summary>
    public static PromptFormat Resolve(string spec, string? tokenizerDir, TrainOn trainOn = TrainOn.Assistant, TrainOnEos eos = TrainOnEos.Turn)
    {
        if (IsChatSpec(spec))
        {
            JinjaChatTemplate chat;
            try
            {
                bool file = !spec.Equals(Chat, StringComparison.OrdinalIgnoreCase);
                if (tokenizerDir == null)
                    chat = file ? ChatTemplateLoader.FromFile(spec) : throw new ArgumentException("template 'chat' needs the tokenizer folder");
                else chat = ChatTemplateLoader.FromTokenizer(tokenizerDir, file ? spec : null);
            }
            catch (ChatTemplateException e) { throw new ArgumentException(e.Message); }
            return new PromptFormat(new ChatTemplatePrompt(chat, spec, trainOn: trainOn, trainOnEos: eos), spec, chat, trainOn, eos);
        }
        if (eos != TrainOnEos.Turn)
            throw new ArgumentException($"train_on_eos '{eos}' needs a chat template (template: chat or a .jinja file); '{spec}' always learns its end of turn");
        return new PromptFormat(PromptTemplates.Get(spec), spec, null, trainOn, eos);
    }

    public RenderedText Render(InstructionRecord record)
    {
        var r = _template.Render(record);
        r = TrainOn == TrainOn.LastAssistant && !IsChatTemplate ? TurnPolicies.KeepLastResponse(r) : r;
        return Markers is [var open, var close] ? InstructionMarkerText.Wrap(r, open, close) : r;
    }

    /// <summary>Masking options for this format at the given length limit.</summary>
    public MaskOptions Mask(int maxSeqLen) =>
        new(maxSeqLen, TrainOnInputs: TrainOn == TrainOn.All, AddBos: !IsChatTemplate, AppendEos: !IsChatTemplate);

    /// <summary>
    /// Special tokens the chat template writes that the tokenizer does not know as single tokens (they would be
    /// learned as pieces of text). Checked against the template's own special-token variables and every
    /// <c>&lt;|…|&gt;</c>-style literal in its source.
    /// </summary>
    public IReadOnlyList<string> MissingSpecialTokens(Tokenizers.ITokenizer tokenizer)
    {
        if (ChatTemplate == null) return [];
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, v) in ChatTemplate.SpecialTokens)
            if (v is string s && s.Length > 0) wanted.Add(s);
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(ChatTemplate.Source, @"<\|[A-Za-z0-9_]+\|>"))
            wanted.Add(m.Value);
        return wanted.Where(t => tokenizer.TokenToId(t) == null).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>What the adapter and run folders record about the format (instructtune.json).</summary>
    public PromptFormatRecord ToRecord(Tokenizers.ITokenizer? tokenizer) => new(
        Spec, Name, TrainOn.ToString(), TrainOnEos.ToString(), ChatTemplate?.Source,
        ChatTemplate?.SpecialTokens.Where(kv => kv.Value is string).ToDictionary(kv => kv.Key, kv => (string)kv.Value!)
            ?? (tokenizer == null ? new Dictionary<string, string>() : TokenizerSpecials(tokenizer)))
    { InstructionMarkers = Markers };

    private static Dictionary<string, string> TokenizerSpecials(Tokenizers.ITokenizer t)
    {
        var d = new Dictionary<string, string>();
        if (t.BosId is int b && t.IdToToken(b) is { } bs) d["bos_token"] = bs;
        if (t.EosId is int e && t.IdToToken(e) is { } es) d["eos_token"] = es;
        if (t.PadId is int p && t.IdToToken(p) is { } ps) d["pad_token"] = ps;
        return d;
    }
}

/// <summary>instructtune.json's prompt-format part: enough for eval/generate to format prompts exactly as in training.</summary>
public sealed record PromptFormatRecord(
    [property: JsonPropertyName("template")] string Template,
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("train_on")] string TrainOn,
    [property: JsonPropertyName("train_on_eos")] string TrainOnEos,
    [property: JsonPropertyName("chat_template")] string? ChatTemplate,
    [property: JsonPropertyName("special_tokens")] IReadOnlyDictionary<string, string> SpecialTokens)
{
    /// <summary>The instruction marker tokens [open, close] the model was trained with around every instruction span
    /// (model.instruction_aware.marker_tokens); absent when none.</summary>
    [JsonPropertyName("instruction_markers")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<string>? InstructionMarkers { get; init; }
}
