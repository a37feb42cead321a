using InstructTune.Data.Records;
using InstructTune.Templates;

namespace InstructTune.Data.Templating;

/// <summary>
/// Renders records through a tokenizer chat template (<see cref="IChatTemplate"/>, e.g. a tokenizer_config.json
/// Jinja template; recipe key <c>data.template: chat</c> or a <c>.jinja</c> file) and turns its per-message provenance
/// into segment spans. A single-turn record becomes user(instruction + "\n\n" + input) and assistant(output); the user
/// content is split back into its instruction and input characters by offset.
/// <para>What is learned (the <see cref="Segment.Response"/> spans):</para>
/// <list type="bullet">
/// <item>When the template marks assistant output with <c>{% generation %}</c> blocks, exactly those blocks (as
/// transformers' <c>return_assistant_tokens_mask</c>).</item>
/// <item>Otherwise the rendered characters of each assistant message's content, plus its end-of-turn marker: the
/// template text right after the content, when it is optional spaces followed by one of the markers
/// (<c>&lt;|im_end|&gt;</c>, <c>&lt;|eot_id|&gt;</c>, <c>&lt;|end|&gt;</c>, <c>&lt;/s&gt;</c>, the template's eos_token, …).
/// Headers, newlines after the marker and a trailing EOS the template adds after the last turn stay unlearned.</item>
/// </list>
/// <see cref="TrainOn.LastAssistant"/> keeps only the last turn (earlier ones become <see cref="Segment.Input"/>);
/// <see cref="TrainOnEos"/> says which markers are learned. <see cref="TrainOn.All"/> is applied by the tokenizer
/// (<see cref="MaskOptions.TrainOnInputs"/>).
/// </summary>
public sealed class ChatTemplatePrompt : IPromptTemplate
{
    public static readonly IReadOnlyList<string> DefaultEndMarkers =
        ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<|endoftext|>", "<|end_of_text|>", "</s>", "<end_of_turn>"];

    private readonly IChatTemplate _template;
    private readonly IReadOnlyList<string> _markers;
    private readonly TrainOn _trainOn;
    private readonly TrainOnEos _eos;

    public ChatTemplatePrompt(IChatTemplate template, string name = "chat_template", IReadOnlyList<string>? endOfTurnMarkers = null,
        TrainOn trainOn = TrainOn.Assistant, TrainOnEos trainOnEos = TrainOnEos.Turn)
    {
        _template = template;
        Name = name;
        var markers = new List<string>(endOfTurnMarkers ?? DefaultEndMarkers);
        if (template is JinjaChatTemplate j && j.SpecialTokens.TryGetValue("eos_token", out var eos) && eos is string e && e.Length > 0 && !markers.Contains(e))
            markers.Add(e);
        _markers = markers.OrderByDescending(m => m.Length).ToList();   // longest first: "<|end|>" must not win over "<|endoftext|>"
        _trainOn = trainOn;
        _eos = trainOnEos;
    }

    public string Name { get; }

    public IChatTemplate Template => _template;

    /// <summary>One learned turn: content [Start, ContentEnd), then its marker up to End (End == ContentEnd when none).</summary>
    private readonly record struct Turn(int Start, int ContentEnd, int End);

    public RenderedText Render(InstructionRecord r)
    {
        if (r.IsPlainText) return PromptTemplates.PlainText(r);
        int splitAt = -1;
        IReadOnlyList<ChatMessage> messages;
        if (r.IsChat) messages = r.Messages!;
        else
        {
            var user = r.Input.Length > 0 ? r.Instruction + "\n\n" + r.Input : r.Instruction;
            splitAt = r.Input.Length > 0 ? r.Instruction.Length : -1;
            messages = [new ChatMessage("user", user), new ChatMessage("assistant", r.Output)];
        }
        return Spans(messages, splitAt, _template.Render(messages));
    }

    /// <summary>
    /// The prompt of the next assistant turn after <paramref name="messages"/> (rendered with the template's generation
    /// prompt), with the segment spans <see cref="Render"/> gives those characters in training: system and user turns
    /// instruction, tool results input, earlier assistant turns as their policy says. <paramref name="splitAt"/>: where a
    /// single-turn record's instruction ends in the first user message ("\n\n" + input follows), −1 for none. Inference
    /// (<c>eval</c>, <c>generate</c>, <c>serve</c>, <c>score</c>) reads instruction-aware models' segments from here.
    /// </summary>
    public RenderedText RenderPrompt(IReadOnlyList<ChatMessage> messages, int splitAt = -1) =>
        Spans(messages, splitAt, _template.Render(messages, addGenerationPrompt: true));

    private RenderedText Spans(IReadOnlyList<ChatMessage> messages, int splitAt, RenderedChat rendered)
    {
        var text = rendered.Text;

        // Prompt spans: every non-assistant message's characters.
        var spans = new List<SegmentSpan>();
        foreach (var s in rendered.Spans)
        {
            if (s.MessageIndex < 0 || messages[s.MessageIndex].Role == "assistant") continue;
            var segment = messages[s.MessageIndex].Role == "tool" ? Segment.Input : Segment.Instruction;
            if (splitAt >= 0 && s.MessageIndex == 0 && s.Length > splitAt)
            {
                // instruction | "\n\n" + input: the separator counts as template text.
                spans.Add(new SegmentSpan(s.Start, splitAt, Segment.Instruction));
                spans.Add(new SegmentSpan(s.Start + splitAt + 2, s.Length - splitAt - 2, Segment.Input));
            }
            else spans.Add(new SegmentSpan(s.Start, s.Length, segment));
        }

        var turns = rendered.GenerationRanges is { Count: > 0 } generation ? FromGenerationBlocks(text, generation) : FromContentSpans(text, rendered, messages);
        for (int i = 0; i < turns.Count; i++)
        {
            var t = turns[i];
            bool last = i == turns.Count - 1;
            if (_trainOn == TrainOn.LastAssistant && !last)
            {
                spans.Add(new SegmentSpan(t.Start, t.ContentEnd - t.Start, Segment.Input));
                continue;
            }
            bool withMarker = _eos == TrainOnEos.Turn || (_eos == TrainOnEos.Last && last);
            int end = withMarker ? t.End : t.ContentEnd;
            if (end > t.Start) spans.Add(new SegmentSpan(t.Start, end - t.Start, Segment.Response));
        }
        spans.Sort((a, b) => a.Start.CompareTo(b.Start));
        return new RenderedText(text, spans);
    }

    private List<Turn> FromContentSpans(string text, RenderedChat rendered, IReadOnlyList<ChatMessage> messages)
    {
        // Merge the spans of each assistant message (content can be rendered in pieces, e.g. around a stripped part).
        var turns = new List<Turn>();
        int lastMessage = -1;
        foreach (var s in rendered.Spans)
        {
            if (s.MessageIndex < 0 || messages[s.MessageIndex].Role != "assistant") continue;
            if (s.MessageIndex == lastMessage && turns.Count > 0)
                turns[^1] = turns[^1] with { ContentEnd = s.Start + s.Length, End = s.Start + s.Length };
            else turns.Add(new Turn(s.Start, s.Start + s.Length, s.Start + s.Length));
            lastMessage = s.MessageIndex;
        }
        for (int i = 0; i < turns.Count; i++) turns[i] = turns[i] with { End = MarkerEnd(text, turns[i].ContentEnd) };
        return turns;
    }

    private List<Turn> FromGenerationBlocks(string text, IReadOnlyList<(int Start, int End)> ranges)
    {
        var turns = new List<Turn>();
        foreach (var (start, end) in ranges)
        {
            // The block's own trailing marker (if any) is what train_on_eos turns on and off.
            int contentEnd = end;
            foreach (var m in _markers)
            {
                if (end - start < m.Length || string.CompareOrdinal(text, end - m.Length, m, 0, m.Length) != 0) continue;
                contentEnd = end - m.Length;
                while (contentEnd > start && text[contentEnd - 1] == ' ') contentEnd--;
                break;
            }
            turns.Add(new Turn(start, contentEnd, end));
        }
        return turns;
    }

    /// <summary>End of the marker that follows content ending at <paramref name="at"/>: optional spaces, then a marker; else <paramref name="at"/>.</summary>
    private int MarkerEnd(string text, int at)
    {
        int p = at;
        while (p < text.Length && text[p] == ' ') p++;
        foreach (var m in _markers)
            if (string.CompareOrdinal(text, p, m, 0, m.Length) == 0 && p + m.Length <= text.Length) return p + m.Length;
        return at;
    }
}
