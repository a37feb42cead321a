using InstructTune.Data.Records;

namespace InstructTune.Data.Templating;

/// <summary>
/// The Stanford Alpaca prompt (with and without input, as in the project's train.py). Chats render each user turn
/// as an Instruction block, tool turns as Input blocks and assistant turns as Response blocks.
/// </summary>
public sealed class AlpacaTemplate : IPromptTemplate
{
    public const string PreambleWithInput = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n";
    public const string PreambleNoInput = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n";

    public string Name => "alpaca";

    public RenderedText Render(InstructionRecord r)
    {
        if (r.IsPlainText) return PromptTemplates.PlainText(r);
        var b = new RenderBuilder();
        if (r.IsChat)
        {
            foreach (var m in r.Messages!)
            {
                switch (m.Role)
                {
                    case "system": b.Add(m.Content, Segment.Instruction).Add("\n\n"); break;
                    case "user": b.Add("### Instruction:\n").Add(m.Content, Segment.Instruction).Add("\n\n"); break;
                    case "tool": b.Add("### Input:\n").Add(m.Content, Segment.Input).Add("\n\n"); break;
                    default: b.Add("### Response:\n").Add(m.Content, Segment.Response).Add("\n\n"); break;
                }
            }
            return b.Build();
        }
        bool hasInput = r.Input.Length > 0;
        b.Add(hasInput ? PreambleWithInput : PreambleNoInput).Add("### Instruction:\n").Add(r.Instruction, Segment.Instruction).Add("\n\n");
        if (hasInput) b.Add("### Input:\n").Add(r.Input, Segment.Input).Add("\n\n");
        return b.Add("### Response:\n").Add(r.Output, Segment.Response).Build();
    }
}
