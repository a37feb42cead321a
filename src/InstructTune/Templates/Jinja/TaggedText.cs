using System.Text;

namespace InstructTune.Templates.Jinja;

/// <summary>
/// A run of characters that came from one message's content: [Start, Start+Length) of the owning string,
/// produced by message <see cref="MessageIndex"/>.
/// </summary>
public readonly record struct TextTag(int Start, int Length, int MessageIndex);

/// <summary>
/// A string value that remembers which characters came from message content (provenance). Plain C# strings
/// are template text; a <see cref="TaggedText"/> carries tags. Operations that only move characters around
/// (concatenation, trim/strip, slicing, case changes that keep the length) keep the tags; anything that
/// computes new characters (replace, tojson, format, …) produces template text.
/// </summary>
public sealed class TaggedText
{
    public string Text { get; }
    /// <summary>Non-overlapping tags in increasing Start order.</summary>
    public IReadOnlyList<TextTag> Tags { get; }

    public TaggedText(string text, IReadOnlyList<TextTag> tags) { Text = text; Tags = tags; }

    /// <summary>The whole of <paramref name="text"/> came from message <paramref name="messageIndex"/>.</summary>
    public static object Whole(string text, int messageIndex) =>
        text.Length == 0 ? text : new TaggedText(text, [new TextTag(0, text.Length, messageIndex)]);

    public override string ToString() => Text;

    /// <summary>Characters [start, start+length) of a string value, keeping tags.</summary>
    public static object Slice(object s, int start, int length)
    {
        if (s is string plain) return plain.Substring(start, length);
        var t = (TaggedText)s;
        var tags = new List<TextTag>();
        int end = start + length;
        foreach (var tag in t.Tags)
        {
            int a = Math.Max(tag.Start, start), b = Math.Min(tag.Start + tag.Length, end);
            if (b > a) tags.Add(new TextTag(a - start, b - a, tag.MessageIndex));
        }
        var text = t.Text.Substring(start, length);
        return tags.Count == 0 ? text : new TaggedText(text, tags);
    }

    /// <summary>Same tags over a new text of the same length (upper/lower/title where length is unchanged).</summary>
    public static object Retext(object source, string newText)
    {
        if (source is TaggedText t && t.Text.Length == newText.Length) return new TaggedText(newText, t.Tags);
        return newText;
    }

    /// <summary>Concatenates string values (plain or tagged) keeping tags.</summary>
    public static object Concat(IEnumerable<object> parts)
    {
        var sb = new StringBuilder();
        List<TextTag>? tags = null;
        foreach (var p in parts)
        {
            if (p is TaggedText t)
            {
                tags ??= [];
                foreach (var tag in t.Tags) Append(tags, new TextTag(tag.Start + sb.Length, tag.Length, tag.MessageIndex));
                sb.Append(t.Text);
            }
            else sb.Append((string)p);
        }
        var text = sb.ToString();
        return tags is null || tags.Count == 0 ? text : new TaggedText(text, tags);
    }

    /// <summary>Appends a tag, merging it with the previous one when they touch and share the message.</summary>
    internal static void Append(List<TextTag> tags, TextTag tag)
    {
        if (tag.Length == 0) return;
        if (tags.Count > 0)
        {
            var last = tags[^1];
            if (last.MessageIndex == tag.MessageIndex && last.Start + last.Length == tag.Start)
            {
                tags[^1] = last with { Length = last.Length + tag.Length };
                return;
            }
        }
        tags.Add(tag);
    }
}
