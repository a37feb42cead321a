using InstructTune.Data.Records;

namespace InstructTune.Data.Templating;

/// <summary>
/// Llama 2 chat: <c>[INST] &lt;&lt;SYS&gt;&gt;\n{system}\n&lt;&lt;/SYS&gt;&gt;\n\n{user} [/INST] {assistant} &lt;/s&gt;&lt;s&gt;[INST] …</c>
/// as Meta's and Hugging Face's template writes it. The first <c>&lt;s&gt;</c> comes from the tokenizer (BOS);
/// later turns carry <c>&lt;s&gt;</c> as text, and each assistant turn ends with <c> &lt;/s&gt;</c> (learned).
/// </summary>
public sealed class Llama2Template : IPromptTemplate
{
    public string Name => "llama2";

    public RenderedText Render(InstructionRecord r)
    {
        if (r.IsPlainText) return PromptTemplates.PlainText(r);
        var b = new RenderBuilder();
        if (!r.IsChat)
        {
            b.Add("[INST] ").Add(r.Instruction, Segment.Instruction);
            if (r.Input.Length > 0) b.Add("\n\n").Add(r.Input, Segment.Input);
            return b.Add(" [/INST] ").Add(r.Output + " </s>", Segment.Response).Build();
        }
        string? system = null;
        bool first = true, openUser = false;
        foreach (var m in r.Messages!)
        {
            switch (m.Role)
            {
                case "system": system = m.Content; break;
                case "assistant":
                    if (!openUser) b.Add((first ? "" : "<s>") + "[INST]  [/INST]");
                    b.Add(" ").Add(m.Content + " </s>", Segment.Response);
                    first = false; openUser = false;
                    break;
                default:
                    b.Add((first ? "" : "<s>") + "[INST] ");
                    if (system != null) { b.Add("<<SYS>>\n").Add(system, Segment.Instruction).Add("\n<</SYS>>\n\n"); system = null; }
                    b.Add(m.Content, m.Role == "tool" ? Segment.Input : Segment.Instruction).Add(" [/INST]");
                    openUser = true; first = false;
                    break;
            }
        }
        return b.Build();
    }
}
