using InstructTune.Templates;
using InstructTune.Templates.Jinja;

namespace InstructTune.Tests.Templates;

internal static class ProvenanceChecks
{
    /// <summary>
    /// Spans cover the text in order without gaps, and every span attributed to a message is a piece of that
    /// message's content (up to case) with that message's role.
    /// </summary>
    public static void AssertSound(RenderedChat chat, IReadOnlyList<IReadOnlyDictionary<object, object?>> messages)
    {
        int pos = 0;
        foreach (var span in chat.Spans)
        {
            Assert.Equal(pos, span.Start);
            Assert.True(span.Length > 0);
            pos += span.Length;
            if (span.MessageIndex < 0) { Assert.Null(span.Role); continue; }
            var content = Py.Text(messages[span.MessageIndex]["content"]);
            // Case changes that keep the length keep provenance (upper/lower/title), hence ignore case.
            Assert.Contains(chat.Text.Substring(span.Start, span.Length), content, StringComparison.OrdinalIgnoreCase);
            Assert.Equal(messages[span.MessageIndex]["role"], span.Role);
        }
        Assert.Equal(chat.Text.Length, pos);
    }
}
