using InstructTune.Data.Records;

namespace InstructTune.Data.Templating;

/// <summary>
/// A user template such as <c>"Q: {instruction}\n{input}\nA: {output}"</c>. Placeholders are {instruction},
/// {input}, {output} (and {system} for chats, ignored otherwise); "\n" in the spec (as typed on a command line)
/// means a newline. When the input is empty, the text between {input} and the next placeholder shrinks to nothing
/// up to the first newline, so "…{instruction}\n{input}\nA:" becomes "…{instruction}\nA:". Chats render turn pairs.
/// </summary>
public sealed class FormatStringTemplate : IPromptTemplate
{
    private readonly List<(string Text, string? Field)> _parts = [];

    public FormatStringTemplate(string spec)
    {
        spec = spec.Replace("\\n", "\n");
        int pos = 0;
        while (pos < spec.Length)
        {
            int open = spec.IndexOf('{', pos);
            int close = open < 0 ? -1 : spec.IndexOf('}', open);
            if (open < 0 || close < 0) { _parts.Add((spec[pos..], null)); break; }
            if (open > pos) _parts.Add((spec[pos..open], null));
            var field = spec[(open + 1)..close];
            if (field is not ("instruction" or "input" or "output"))
                throw new ArgumentException($"template placeholder '{{{field}}}' is unknown (expected {{instruction}}, {{input}}, {{output}})");
            _parts.Add(("", field));
            pos = close + 1;
        }
        if (!_parts.Any(p => p.Field == "output")) throw new ArgumentException("a format template needs an {output} placeholder");
        Name = "format";
    }

    public string Name { get; }

    public RenderedText Render(InstructionRecord r)
    {
        if (r.IsPlainText) return PromptTemplates.PlainText(r);
        var b = new RenderBuilder();
        if (r.IsChat)
        {
            string pendingUser = "";
            foreach (var m in r.Messages!)
            {
                if (m.Role != "assistant") { pendingUser = pendingUser.Length > 0 ? pendingUser + "\n\n" + m.Content : m.Content; continue; }
                Fill(b, pendingUser, "", m.Content);
                pendingUser = "";
            }
            return b.Build();
        }
        Fill(b, r.Instruction, r.Input, r.Output);
        return b.Build();
    }

    private void Fill(RenderBuilder b, string instruction, string input, string output)
    {
        bool skipToNewline = false;
        foreach (var (text, field) in _parts)
        {
            if (field == null)
            {
                var t = text;
                if (skipToNewline) { var nl = t.IndexOf('\n'); t = nl >= 0 ? t[(nl + 1)..] : t; skipToNewline = false; }
                b.Add(t);
                continue;
            }
            switch (field)
            {
                case "instruction": b.Add(instruction, Segment.Instruction); break;
                case "input":
                    if (input.Length == 0) skipToNewline = true;
                    else b.Add(input, Segment.Input);
                    break;
                default: b.Add(output, Segment.Response); break;
            }
        }
    }
}
