namespace InstructTune.Templates;

/// <summary>Helpers over provenance spans for loss masking.</summary>
public static class ChatSpans
{
    /// <summary>
    /// Character ranges [Start, End) of the rendered text that came from messages with the given role, in order
    /// (adjacent spans of the same message merged). Template text such as headers and EOS is not included.
    /// </summary>
    public static List<(int Start, int End, int MessageIndex)> RangesOfRole(this RenderedChat chat, string role)
    {
        var ranges = new List<(int Start, int End, int MessageIndex)>();
        foreach (var s in chat.Spans)
        {
            if (s.Role != role || s.MessageIndex < 0) continue;
            if (ranges.Count > 0 && ranges[^1].End == s.Start && ranges[^1].MessageIndex == s.MessageIndex)
                ranges[^1] = (ranges[^1].Start, s.Start + s.Length, s.MessageIndex);
            else ranges.Add((s.Start, s.Start + s.Length, s.MessageIndex));
        }
        return ranges;
    }
}
