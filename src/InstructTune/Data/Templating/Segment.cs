namespace InstructTune.Data.Templating;

/// <summary>
/// What a character or token is, for masks and for the instruction-aware model variants. The order matters:
/// a token that merges characters of several segments takes the largest (so any response character makes the
/// whole token a response token, which must be learned).
/// Chats map system and user turns to <see cref="Instruction"/>, tool results to <see cref="Input"/>,
/// assistant turns to <see cref="Response"/>; plain pre-training text is all <see cref="Response"/>.
/// </summary>
public enum Segment : byte { Template = 0, Instruction = 1, Input = 2, Response = 3 }

/// <summary>A [Start, Start+Length) run of rendered characters belonging to one segment.</summary>
public readonly record struct SegmentSpan(int Start, int Length, Segment Segment);

/// <summary>Rendered prompt+response text with its segment spans (characters outside every span are template text).</summary>
public sealed record RenderedText(string Text, IReadOnlyList<SegmentSpan> Spans)
{
    /// <summary>The segment of every character (Template where no span covers it).</summary>
    public Segment[] CharSegments()
    {
        var seg = new Segment[Text.Length];
        foreach (var s in Spans) seg.AsSpan(s.Start, s.Length).Fill(s.Segment);
        return seg;
    }

    /// <summary>The text of all spans of one segment, concatenated (for tests and debugging).</summary>
    public string TextOf(Segment segment) =>
        string.Concat(Spans.Where(s => s.Segment == segment).Select(s => Text.Substring(s.Start, s.Length)));
}

/// <summary>Builds rendered text span by span.</summary>
public sealed class RenderBuilder
{
    private readonly System.Text.StringBuilder _text = new();
    private readonly List<SegmentSpan> _spans = [];

    public RenderBuilder Add(string text, Segment segment = Segment.Template)
    {
        if (text.Length == 0) return this;
        if (segment != Segment.Template)
        {
            // Adjacent runs of one segment merge, so a response followed by its end-of-turn marker is one span.
            if (_spans.Count > 0 && _spans[^1].Segment == segment && _spans[^1].Start + _spans[^1].Length == _text.Length)
                _spans[^1] = _spans[^1] with { Length = _spans[^1].Length + text.Length };
            else
                _spans.Add(new SegmentSpan(_text.Length, text.Length, segment));
        }
        _text.Append(text);
        return this;
    }

    public RenderedText Build() => new(_text.ToString(), _spans.ToArray());
}
