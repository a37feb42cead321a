namespace InstructTune.Data.Templating;

/// <summary>
/// Instruction marker tokens (model.instruction_aware.marker_tokens) in rendered text: every
/// <see cref="Segment.Instruction"/> span becomes <c>open + span + close</c>, the markers' characters belonging to the
/// span (so their tokens are instruction tokens). Training (<see cref="PromptFormat.Render"/>) and the inference prompt
/// formats (Evaluation.ModelBackends.PromptFormatter, from the markers instructtune.json records) both wrap here, so a
/// model sees its markers in the same places at inference as in training. The markers are added tokens of the
/// tokenizer, matched before the model as whole tokens (Tokenizers.AddedVocabulary).
/// </summary>
public static class InstructionMarkerText
{
    /// <summary>The text with each instruction span wrapped in the markers; the other spans shift with the inserts.</summary>
    public static RenderedText Wrap(RenderedText r, string open, string close)
    {
        if (!r.Spans.Any(s => s.Segment == Segment.Instruction)) return r;
        var text = new System.Text.StringBuilder(r.Text.Length + 2 * (open.Length + close.Length));
        var spans = new List<SegmentSpan>(r.Spans.Count);
        int pos = 0;
        foreach (var s in r.Spans.OrderBy(s => s.Start))
        {
            text.Append(r.Text, pos, s.Start - pos);                  // template text before the span
            int start = text.Length;
            if (s.Segment == Segment.Instruction) text.Append(open);
            text.Append(r.Text, s.Start, s.Length);
            if (s.Segment == Segment.Instruction) text.Append(close);
            spans.Add(new SegmentSpan(start, text.Length - start, s.Segment));
            pos = s.Start + s.Length;
        }
        text.Append(r.Text, pos, r.Text.Length - pos);
        return new RenderedText(text.ToString(), spans);
    }
}
