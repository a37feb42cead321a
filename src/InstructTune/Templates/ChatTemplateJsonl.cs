using System.Text.Encodings.Web;
using System.Text.Json;

namespace InstructTune.Templates;

/// <summary>
/// The JSON-lines job behind `itune chat-template`: each input line {"messages":[…]} (optionally "tools" and
/// other variables the template reads) becomes {"text":"…"} — with "spans" on request — or {"error":"…"},
/// one output line per input line, in input order. Blank lines are skipped.
/// </summary>
public static class ChatTemplateJsonl
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <returns>(lines rendered, lines that gave an error).</returns>
    public static (int Ok, int Errors) Process(JinjaChatTemplate template, TextReader input, TextWriter output, bool addGenerationPrompt, bool withSpans)
    {
        int ok = 0, errors = 0, lineNo = 0;
        for (string? line = input.ReadLine(); line != null; line = input.ReadLine())
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string result;
            try
            {
                var (messages, extra) = ParseLine(line, lineNo);
                var chat = template.Render(messages, addGenerationPrompt, extra);
                result = Serialize(w =>
                {
                    w.WriteString("text", chat.Text);
                    if (!withSpans) return;
                    w.WriteStartArray("spans");
                    foreach (var s in chat.Spans)
                    {
                        w.WriteStartObject();
                        w.WriteNumber("start", s.Start);
                        w.WriteNumber("length", s.Length);
                        w.WriteNumber("message", s.MessageIndex);
                        if (s.Role is null) w.WriteNull("role"); else w.WriteString("role", s.Role);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                });
                ok++;
            }
            catch (ChatTemplateException e)
            {
                result = Serialize(w => w.WriteString("error", e.Message));
                errors++;
            }
            output.WriteLine(result);
        }
        return (ok, errors);
    }

    private static (List<IReadOnlyDictionary<object, object?>>, Dictionary<string, object?>) ParseLine(string line, int lineNo)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new ChatTemplateException($"input line {lineNo}: invalid JSON: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("messages", out var msgs) || msgs.ValueKind != JsonValueKind.Array)
                throw new ChatTemplateException($"input line {lineNo}: expected an object with a \"messages\" array");
            var messages = new List<IReadOnlyDictionary<object, object?>>();
            int i = 0;
            foreach (var m in msgs.EnumerateArray())
            {
                if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                    throw new ChatTemplateException($"input line {lineNo}: messages[{i}] needs a string field \"role\"");
                messages.Add((Dictionary<object, object?>)TemplateValues.FromJson(m)!);
                i++;
            }
            var extra = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var p in root.EnumerateObject())
                if (p.Name != "messages") extra[p.Name] = TemplateValues.FromJson(p.Value);
            return (messages, extra);
        }
    }

    private static string Serialize(Action<Utf8JsonWriter> body)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, WriterOptions))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }
}
