using InstructTune.Data.Records;

namespace InstructTune.Data.Templating;

/// <summary>
/// Header/footer chat markups: ChatML (<c>&lt;|im_start|&gt;role\n … &lt;|im_end|&gt;\n</c>, Qwen and others) and
/// Llama 3 (<c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\n … &lt;|eot_id|&gt;</c>; BOS comes from the tokenizer).
/// A single-turn record is one user turn (instruction, a blank line, input) and one assistant turn.
/// The end-of-turn marker after assistant content is part of the response span.
/// </summary>
public sealed class ChatMarkupTemplate(ChatMarkupTemplate.Markup markup) : IPromptTemplate
{
    public sealed record Markup(string Name, string HeaderOpen, string HeaderClose, string EndOfTurn, string AfterTurn);

    public static Markup ChatMl { get; } = new("chatml", "<|im_start|>", "\n", "<|im_end|>", "\n");
    public static Markup Llama3 { get; } = new("llama3", "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>", "");

    public string Name => markup.Name;

    public RenderedText Render(InstructionRecord r)
    {
        if (r.IsPlainText) return PromptTemplates.PlainText(r);
        var b = new RenderBuilder();
        if (r.IsChat)
        {
            foreach (var m in r.Messages!)
            {
                var segment = m.Role switch { "assistant" => Segment.Response, "tool" => Segment.Input, _ => Segment.Instruction };
                Turn(b, m.Role, segment, m.Content);
            }
            return b.Build();
        }
        b.Add(markup.HeaderOpen + "user" + markup.HeaderClose).Add(r.Instruction, Segment.Instruction);
        if (r.Input.Length > 0) b.Add("\n\n").Add(r.Input, Segment.Input);
        b.Add(markup.EndOfTurn + markup.AfterTurn);
        Turn(b, "assistant", Segment.Response, r.Output);
        return b.Build();
    }

    private void Turn(RenderBuilder b, string role, Segment segment, string content)
    {
        b.Add(markup.HeaderOpen + role + markup.HeaderClose).Add(content, segment);
        b.Add(markup.EndOfTurn, segment == Segment.Response ? Segment.Response : Segment.Template).Add(markup.AfterTurn);
    }
}
