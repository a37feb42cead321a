using System.Text.Json;
using InstructTune.Templates.Jinja;

namespace InstructTune.Templates;

/// <summary>Converts JSON (messages, tools, extra variables) to the template value model, as Python's json.loads would.</summary>
public static class TemplateValues
{
    public static object? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => IsInteger(e.GetRawText()) && e.TryGetInt64(out var l) ? (object)l : e.GetDouble(),
        JsonValueKind.Array => e.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.Object => ObjectToDict(e),
        _ => throw new ArgumentException($"unsupported JSON value {e.ValueKind}"),
    };

    private static bool IsInteger(string raw) => raw.IndexOfAny(['.', 'e', 'E']) < 0;

    private static Dictionary<object, object?> ObjectToDict(JsonElement e)
    {
        var d = new Dictionary<object, object?>();
        foreach (var p in e.EnumerateObject()) d[p.Name] = FromJson(p.Value);
        return d;
    }

    /// <summary>
    /// A message as the template sees it: a dict whose string "content" is tagged with the message index
    /// (so its characters are attributed to that message wherever they end up in the output).
    /// </summary>
    public static Dictionary<object, object?> Message(IReadOnlyDictionary<object, object?> fields, int index)
    {
        var d = new Dictionary<object, object?>();
        foreach (var (k, v) in fields)
            d[k] = Equals(k, "content") && v is string s ? TaggedText.Whole(s, index) : v;
        return d;
    }

    public static Dictionary<object, object?> Message(ChatMessage m, int index) =>
        Message(new Dictionary<object, object?> { ["role"] = m.Role, ["content"] = m.Content }, index);
}
