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
/// <see cref="Format(InstructionRecord)"/> formats a dataset record for <c>itune eval run</c>: templates render its
/// instruction and input in their own places (so a model sees the prefix it was tuned on), chat templates get its
/// messages up to the last assistant turn (or one user message: instruction, blank line, input), and <c>raw</c> gets
/// the instruction and input joined by a blank line (earlier chat turns as "role: content" lines).
/// </summary>
public sealed class PromptFormatter
{
    private readonly Func<string, string> _format;
    private readonly Func<InstructionRecord, string> _formatRecord;
    private readonly Func<InstructionRecord, RenderedText>? _renderRecord;

    public string Name { get; }
    public bool AddSpecialTokens { get; }
    /// <summary>Where the format came from, for the line every command prints: "recorded in DIR/instructtune.json",
    /// "--template", "the tokenizer's chat template (auto)", …</summary>
    public string Origin { get; private init; } = "";
    /// <summary>"NAME (ORIGIN)": what <c>generate</c>, <c>score</c>, <c>eval</c> and <c>serve</c> say they used.</summary>
    public string Describe() => Origin.Length == 0 ? Name : $"{Name} ({Origin})";

    private PromptFormatter From(string origin) => new(Name, _format, _formatRecord, AddSpecialTokens, _renderRecord) { Origin = origin };

    private PromptFormatter(string name, Func<string, string> format, Func<InstructionRecord, string> formatRecord, bool addSpecialTokens,
        Func<InstructionRecord, RenderedText>? renderRecord = null)
    {
        Name = name; _format = format; _formatRecord = formatRecord; AddSpecialTokens = addSpecialTokens; _renderRecord = renderRecord;
    }

    public string Format(string instruction) => _format(instruction);

    /// <summary>The prompt of a dataset record: everything before its (last) response.</summary>
    public string Format(InstructionRecord record) => _formatRecord(record);

    /// <summary>
    /// The per-token segments (template / instruction / input, <see cref="Segment"/>) of <paramref name="ids"/>, the
    /// encoded prompt of <paramref name="record"/> (possibly left-truncated), by the rule training uses
    /// (<see cref="ExampleTokenizer.TokenSegment"/>), so instruction-aware models and iPEFT see at inference the spans
    /// they were trained on: prompt templates by their spans, chat templates by <see cref="ChatTemplatePrompt.RenderPrompt"/>
    /// (system/user turns instruction, a single-turn record's input after its instruction input, tool results input,
    /// earlier assistant turns response). Null where the spans are not known (raw format: the model then treats the
    /// whole prompt as instruction) or the ids are not that prompt's encoding.
    /// </summary>
    public byte[]? PromptSegments(InstructionRecord record, Tokenizers.ITokenizer tokenizer, int[] ids)
    {
        if (_renderRecord is null || ids.Length == 0) return null;
        var rendered = _renderRecord(record);
        return rendered.Text == _formatRecord(record) ? SegmentsOf(rendered, tokenizer, ids) : null;
    }

    /// <summary>
    /// The segments of <paramref name="ids"/> = the encoding of <paramref name="record"/>'s prompt followed by
    /// <paramref name="response"/> (<c>itune score</c>'s {"prompt","response"} lines): the prompt's as
    /// <see cref="PromptSegments"/>, the response's characters <see cref="Segment.Response"/>, a token that straddles
    /// both a response token, as in training. Null where <see cref="PromptSegments"/> would be.
    /// </summary>
    public byte[]? PromptResponseSegments(InstructionRecord record, string response, Tokenizers.ITokenizer tokenizer, int[] ids)
    {
        if (_renderRecord is null || ids.Length == 0) return null;
        var prompt = _renderRecord(record);
        if (prompt.Text != _formatRecord(record)) return null;
        var whole = new RenderedText(prompt.Text + response, [.. prompt.Spans, new SegmentSpan(prompt.Text.Length, response.Length, Segment.Response)]);
        return SegmentsOf(whole, tokenizer, ids);
    }

    /// <summary>The segments of a conversation's prompt (<see cref="FormatConversation"/>, <c>itune serve</c>).</summary>
    public byte[]? ConversationSegments(IReadOnlyList<ChatMessage> messages, Tokenizers.ITokenizer tokenizer, int[] ids) =>
        PromptSegments(ConversationRecord(messages), tokenizer, ids);

    // Encodes the rendered text and reads each of the trailing ids' segments from its characters (ids may be a
    // left-truncated encoding); null when ids are not the text's encoding.
    private byte[]? SegmentsOf(RenderedText rendered, Tokenizers.ITokenizer tokenizer, int[] ids)
    {
        var enc = tokenizer.Encode(rendered.Text, AddSpecialTokens);
        int skip = enc.Ids.Length - ids.Length;
        if (skip < 0 || !enc.Ids.AsSpan(skip).SequenceEqual(ids)) return null;
        var charSeg = rendered.CharSegments();
        var segs = new byte[ids.Length];
        for (int t = 0; t < ids.Length; t++) segs[t] = (byte)ExampleTokenizer.TokenSegment(charSeg, enc.Offsets[skip + t]);
        return segs;
    }

    public static PromptFormatter Raw { get; } = new("raw", s => s, RawText, true);

    /// <summary>The prompt turns of a record: its messages before the last assistant turn, or one user message.</summary>
    public static IReadOnlyList<ChatMessage> PromptMessages(InstructionRecord r)
    {
        if (r.Messages is { Count: > 0 } m)
        {
            int last = m.Count - 1;
            while (last >= 0 && m[last].Role != "assistant") last--;
            return last > 0 ? m.Take(last).ToList() : m;
        }
        return [new ChatMessage("user", string.IsNullOrEmpty(r.Input) ? r.Instruction : r.Instruction + "\n\n" + r.Input)];
    }

    private static string RawText(InstructionRecord r)
    {
        var turns = PromptMessages(r);
        if (turns.Count == 1) return turns[0].Content;
        return string.Join("\n", turns.Select(t => $"{t.Role}: {t.Content}"));
    }

    /// <summary>
    /// The prompt for the model's next assistant turn after a conversation (<c>itune serve</c>'s chat completions):
    /// a chat template renders the messages with its generation prompt; a prompt template renders them as the
    /// earlier turns of a record whose response is about to start (alpaca: the last user message as the
    /// instruction), cut where the response would begin; raw joins them as "role: content" lines.
    /// </summary>
    /// A single user message is formatted as an instruction (<see cref="Format(string)"/>), exactly as a one-turn
    /// training record with that instruction.
    public string FormatConversation(IReadOnlyList<ChatMessage> messages) => _formatRecord(ConversationRecord(messages));

    // A single user message is a one-turn record with that instruction; more turns a chat record whose reply is next.
    private static InstructionRecord ConversationRecord(IReadOnlyList<ChatMessage> messages) =>
        messages is [{ Role: "user" } only] ? new InstructionRecord(only.Content, "", "", "conversation")
            : new InstructionRecord("", "", "", "conversation") { Messages = [.. messages, new ChatMessage("assistant", "")] };

    /// <summary>The formatter named by <c>--template</c>; <paramref name="tokenizerDir"/> supplies the chat template.</summary>
    public static PromptFormatter Create(string? name, string tokenizerDir)
    {
        name = string.IsNullOrWhiteSpace(name) ? "auto" : name;
        switch (name.ToLowerInvariant())
        {
            case "raw": return Raw;
            case "auto": return HasChatTemplate(tokenizerDir) ? Chat(tokenizerDir).From("the tokenizer's chat template, auto") : Raw.From("no chat template, auto");
            case "chat": return Chat(tokenizerDir).From($"the chat template of {tokenizerDir}");
        }
        IPromptTemplate template;
        try { template = PromptTemplates.Get(name); }
        catch (ArgumentException ex) { throw new EvalInputException($"--template: {ex.Message}; or raw, chat, auto"); }
        return new PromptFormatter(template.Name, instruction => PrefixOf(template, new InstructionRecord(instruction, "", "", "eval")),
            record => PrefixOf(template, record), true, record => RenderedPrefixOf(template, record));
    }

    private static PromptFormatter Chat(string dir)
    {
        IChatTemplate template;
        try { template = ChatTemplateLoader.FromTokenizer(dir); }
        catch (ChatTemplateException ex) { throw new EvalInputException($"--template chat: {ex.Message}"); }
        return Chat(template);
    }

    /// <summary>A formatter over a given chat template (<c>itune serve --chat-template FILE</c>).</summary>
    public static PromptFormatter FromChatTemplate(IChatTemplate template, string origin) => Chat(template).From(origin);

    private static PromptFormatter Chat(IChatTemplate template, TrainOn trainOn = TrainOn.Assistant, TrainOnEos trainOnEos = TrainOnEos.Turn)
    {
        // The spans training gives these characters (ChatTemplatePrompt, the policy the model was trained with).
        var spans = new ChatTemplatePrompt(template, "chat", trainOn: trainOn, trainOnEos: trainOnEos);
        return new("chat", instruction => template.Render([new ChatMessage("user", instruction)], addGenerationPrompt: true).Text,
            record => template.Render(PromptMessages(record), addGenerationPrompt: true).Text, false,
            record => spans.RenderPrompt(PromptMessages(record), record.Messages is { Count: > 0 } || string.IsNullOrEmpty(record.Input) ? -1 : record.Instruction.Length));
    }

    /// <summary>
    /// The formatter for a trained model: the prompt format its adapter (or model) folder records in instructtune.json
    /// (written by <c>itune train</c>; the chat template text itself when it trained with one), unless
    /// <c>--template</c> names another, which is used with a warning. Folders without a record fall back to
    /// <see cref="Create"/> (auto: the tokenizer's chat template, else raw).
    /// </summary>
    /// <param name="fallback">the format when nothing is recorded and none is asked for: <c>auto</c> (eval) or
    /// <c>raw</c> (<c>generate</c> and <c>score</c>, whose text is the model's input as given).</param>
    public static PromptFormatter ForModel(string? name, string modelDir, string? adapterDir, Action<string>? warn = null, string fallback = "auto")
    {
        var recordDir = adapterDir != null && ReadRecord(adapterDir) != null ? adapterDir : modelDir;
        var recorded = ReadRecord(recordDir);
        bool asked = !string.IsNullOrWhiteSpace(name) && !name.Equals("auto", StringComparison.OrdinalIgnoreCase);
        if (recorded == null)
            return asked ? Create(name, modelDir).From("--template") : Create(fallback, modelDir) is var f && f.Origin.Length == 0 ? f.From($"nothing recorded in {PromptFormatFile.FileName}") : f;
        string file = Path.Combine(recordDir, PromptFormatFile.FileName);
        if (asked && !name!.Equals(recorded.Template, StringComparison.Ordinal))
        {
            warn?.Invoke($"warning: --template {name} differs from the prompt format {recordDir} was trained with ('{recorded.Template}', {PromptFormatFile.FileName}); using {name}");
            return Create(name, modelDir).From($"--template; {file} records {recorded.Template}");
        }
        if (recorded.ChatTemplate != null)
            return Chat(new JinjaChatTemplate(recorded.ChatTemplate, recorded.SpecialTokens.ToDictionary(kv => kv.Key, kv => (object?)kv.Value)),
                    Enum.TryParse<TrainOn>(recorded.TrainOn, out var on) ? on : TrainOn.Assistant,
                    Enum.TryParse<TrainOnEos>(recorded.TrainOnEos, out var eos) ? eos : TrainOnEos.Turn)
                .WithMarkers(recorded.InstructionMarkers, file).From($"recorded in {file}");
        return Create(recorded.Template, modelDir).WithMarkers(recorded.InstructionMarkers, file).From($"recorded in {file}");
    }

    /// <summary>
    /// The instruction marker tokens a model was trained with (instructtune.json prompt_format.instruction_markers,
    /// model.instruction_aware.marker_tokens): every instruction span of the prompt wrapped in [open, close] exactly as
    /// training's <see cref="PromptFormat.Render"/> does (<see cref="InstructionMarkerText"/>); null or empty: this format.
    /// </summary>
    public PromptFormatter WithMarkers(IReadOnlyList<string>? markers, string origin)
    {
        if (markers is not { Count: > 0 }) return this;
        if (markers is not [var open, var close])
            throw new EvalInputException($"{origin}: prompt_format.instruction_markers must hold [open, close], got {markers.Count} strings");
        var render = _renderRecord ?? throw new EvalInputException($"{origin}: instruction markers need a template with instruction spans (not {Name})");
        RenderedText Marked(InstructionRecord r) => InstructionMarkerText.Wrap(render(r), open, close);
        return new PromptFormatter(Name, instruction => Marked(new InstructionRecord(instruction, "", "", "eval")).Text, r => Marked(r).Text,
            AddSpecialTokens, Marked) { Origin = Origin };
    }

    private static PromptFormatRecord? ReadRecord(string dir)
    {
        try { return PromptFormatFile.TryRead(dir); }
        catch (InvalidDataException e) { throw new EvalInputException(e.Message); }
    }

    // Render with a one-character response and keep the text before it: templates put the response right after
    // their prompt text, and what follows it (end-of-turn markers) must not be in the prompt.
    // Chat records keep their earlier turns; their last assistant turn becomes the marker.
    private static string PrefixOf(IPromptTemplate template, InstructionRecord record) => RenderedPrefixOf(template, record).Text;

    /// <summary>The prompt prefix with its segment spans cut at the response's start.</summary>
    private static RenderedText RenderedPrefixOf(IPromptTemplate template, InstructionRecord record)
    {
        const string Marker = "\u0001";
        var withMarker = record.Messages is { Count: > 0 }
            ? record with { Messages = [.. PromptMessages(record), new ChatMessage("assistant", Marker)] }
            : record with { Output = Marker };
        var rendered = template.Render(withMarker);
        var response = rendered.Spans.LastOrDefault(s => s.Segment == Segment.Response);
        int at = response.Length > 0 ? response.Start : rendered.Text.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0) throw new InvalidOperationException($"template {template.Name}: cannot find where the response starts");
        var spans = rendered.Spans.Where(sp => sp.Start < at)
            .Select(sp => sp with { Length = Math.Min(sp.Length, at - sp.Start) }).ToArray();
        return new RenderedText(rendered.Text[..at], spans);
    }

    private static bool HasChatTemplate(string dir)
    {
        try { ChatTemplateLoader.FromTokenizer(dir); return true; }
        catch (ChatTemplateException) { return false; }
    }
}
