using System.Text;
using System.Text.Json;

namespace InstructTune.Tokenizers;

/// <summary>
/// Reads a JSON string value that may hold lone surrogates (\ud800 escapes). System.Text.Json refuses those, but
/// tokenizer inputs must accept them: the references treat invalid UTF-16 as U+FFFD and so do our encoders.
/// </summary>
public static class JsonStringLiteral
{
    /// <summary>The string of a JsonElement of kind String, lone surrogates kept.</summary>
    public static string Read(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.String) throw new FormatException($"expected a JSON string, got {e.ValueKind}");
        try { return e.GetString()!; }
        catch (InvalidOperationException) { return Unescape(e.GetRawText()); }
    }

    /// <summary>Unescapes a raw JSON string literal including its quotes; \uXXXX escapes are copied unit by unit.</summary>
    public static string Unescape(string raw)
    {
        var sb = new StringBuilder(raw.Length);
        for (int i = 1; i < raw.Length - 1; i++)
        {
            char c = raw[i];
            if (c != '\\') { sb.Append(c); continue; }
            char k = raw[++i];
            switch (k)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'u': sb.Append((char)Convert.ToInt32(raw.Substring(i + 1, 4), 16)); i += 4; break;
                default: sb.Append(k); break; // \" \\ \/
            }
        }
        return sb.ToString();
    }
}
