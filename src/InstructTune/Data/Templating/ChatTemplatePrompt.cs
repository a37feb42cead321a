using InstructTune.Data.Records;
using InstructTune.Templates;

namespace InstructTune.Data.Templating;

/// <summary>
/// Renders records through a tokenizer chat template (<see cref="IChatTemplate"/>, e.g. a tokenizer_config.json
/// Jinja template) and turns its per-message provenance into segment spans. A single-turn record becomes
/// user(instruction + "\n\n" + input) and assistant(output); the user content is split back into its instruction
/// and input characters by offset. Template text that directly follows an assistant message and starts with one of
/// the end-of-turn markers (<c>&lt;|im_end|&gt;</c>, <c>&lt;|eot_id|&gt;</c>, <c>&lt;/s&gt;</c>, …) is part of the response:
/// the model must learn to emit it.
/// </summary>
public sealed class ChatTemplatePrompt(IChatTemplate template, string name = "chat_template", IReadOnlyList<string>? endOfTurnMarkers = null) : IPromptTemplate
{
    private readonly IReadOnlyList<string> _markers = endOfTurnMarkers ?? ["<|im_end|>", "<|eot_id|>", "<|end|>", "<|endoftext|>", " </s>", "</s>", "<end_of_turn>"];

    public string Name => name;

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
        var rendered = template.Render(messages);
        var spans = new List<SegmentSpan>();
        foreach (var s in rendered.Spans)
        {
            if (s.MessageIndex < 0)
            {
                // End-of-turn marker right after an assistant message: learned.
                if (spans.Count > 0 && spans[^1].Segment == Segment.Response && spans[^1].Start + spans[^1].Length == s.Start)
                    foreach (var m in _markers)
                        if (string.CompareOrdinal(rendered.Text, s.Start, m, 0, m.Length) == 0 && m.Length <= s.Length)
                        {
                            spans[^1] = spans[^1] with { Length = spans[^1].Length + m.Length };
                            break;
                        }
                continue;
            }
            var role = messages[s.MessageIndex].Role;
            var segment = role switch { "assistant" => Segment.Response, "tool" => Segment.Input, _ => Segment.Instruction };
            if (splitAt >= 0 && s.MessageIndex == 0 && s.Length > splitAt)
            {
                // instruction | "\n\n" + input: the separator counts as template text.
                spans.Add(new SegmentSpan(s.Start, splitAt, Segment.Instruction));
                spans.Add(new SegmentSpan(s.Start + splitAt + 2, s.Length - splitAt - 2, Segment.Input));
            }
            else spans.Add(new SegmentSpan(s.Start, s.Length, segment));
        }
        return new RenderedText(rendered.Text, spans);
    }
}
