namespace InstructTune.Data.Templating;

/// <summary>Which assistant turns are learned (recipe key <c>data.train_on</c>).</summary>
public enum TrainOn
{
    /// <summary>Every assistant turn.</summary>
    Assistant,
    /// <summary>Only the last assistant turn; earlier ones are context (segment Input).</summary>
    LastAssistant,
    /// <summary>Every token of the text (system, user and template text included).</summary>
    All,
}

/// <summary>Which end-of-turn markers after learned assistant turns are learned (recipe key <c>data.train_on_eos</c>).</summary>
public enum TrainOnEos
{
    /// <summary>The marker after every learned turn (the model learns to close each turn).</summary>
    Turn,
    /// <summary>Only the marker after the last learned turn.</summary>
    Last,
    /// <summary>No marker.</summary>
    None,
}

/// <summary>What happens to an example longer than max_seq_len (recipe key <c>data.too_long</c>).</summary>
public enum TooLongPolicy
{
    /// <summary>Cut input tokens first, then instruction tokens, then the tail (<see cref="ExampleTokenizer.Truncate"/>).</summary>
    Truncate,
    /// <summary>Leave the example out (counted as dropped).</summary>
    Drop,
    /// <summary>Stop with an error naming the record.</summary>
    Error,
}

/// <summary>Turn policies that apply to any rendered text (built-in and format-string templates).</summary>
public static class TurnPolicies
{
    /// <summary>
    /// <see cref="TrainOn.LastAssistant"/> for templates without per-turn provenance: every response span but the last
    /// becomes <see cref="Segment.Input"/> (context the model reads, not learns).
    /// </summary>
    public static RenderedText KeepLastResponse(RenderedText r)
    {
        int last = -1;
        for (int i = 0; i < r.Spans.Count; i++) if (r.Spans[i].Segment == Segment.Response) last = i;
        if (last < 0) return r;
        return r with { Spans = r.Spans.Select((s, i) => s.Segment == Segment.Response && i != last ? s with { Segment = Segment.Input } : s).ToArray() };
    }
}
