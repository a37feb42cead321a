using System.Text.Json;

namespace InstructTune.Templates;

/// <summary>
/// Finds a model's chat template: `chat_template.jinja` beside the tokenizer (newer transformers layout), or
/// `chat_template` in tokenizer_config.json (a string, or a list of {name, template} from which "default"
/// is taken unless another name is asked for), or an explicit `.jinja` file. Special tokens come from
/// tokenizer_config.json (strings or AddedToken objects with "content"), then special_tokens_map.json.
/// </summary>
public static class ChatTemplateLoader
{
    public static readonly string[] SpecialTokenNames =
        ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "additional_special_tokens"];

    /// <summary>Loads the template of a tokenizer folder (or of the folder holding the given tokenizer file).</summary>
    public static JinjaChatTemplate FromTokenizer(string path, string? templateFile = null, string templateName = "default")
    {
        var dir = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        var tokens = ReadSpecialTokens(dir);
        if (templateFile is not null) return new JinjaChatTemplate(ReadText(templateFile), tokens);
        var jinjaFile = Path.Combine(dir, "chat_template.jinja");
        if (File.Exists(jinjaFile)) return new JinjaChatTemplate(ReadText(jinjaFile), tokens);
        var config = Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(config)) throw new ChatTemplateException($"{dir}: no tokenizer_config.json or chat_template.jinja");
        using var doc = ParseJson(config);
        if (!doc.RootElement.TryGetProperty("chat_template", out var ct) || ct.ValueKind == JsonValueKind.Null)
            throw new ChatTemplateException($"{config}: no \"chat_template\" field (use --template FILE.jinja or a built-in template)");
        return new JinjaChatTemplate(SelectTemplate(ct, config, templateName), tokens);
    }

    /// <summary>
    /// The tokenizer's own template when it has one, else the named built-in with the tokenizer's special tokens
    /// (for base models that ship without a chat template).
    /// </summary>
    public static JinjaChatTemplate FromTokenizerOrBuiltin(string path, string builtinName)
    {
        var dir = Directory.Exists(path) ? path : Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (HasTemplate(dir)) return FromTokenizer(dir);
        return BuiltinChatTemplates.Get(builtinName, ReadSpecialTokens(dir));
    }

    private static bool HasTemplate(string dir)
    {
        if (File.Exists(Path.Combine(dir, "chat_template.jinja"))) return true;
        var config = Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(config)) return false;
        using var doc = ParseJson(config);
        return doc.RootElement.TryGetProperty("chat_template", out var ct) && ct.ValueKind != JsonValueKind.Null;
    }

    /// <summary>A .jinja file on its own (no special tokens unless given).</summary>
    public static JinjaChatTemplate FromFile(string jinjaPath, IReadOnlyDictionary<string, object?>? specialTokens = null) =>
        new(ReadText(jinjaPath), specialTokens);

    private static string SelectTemplate(JsonElement ct, string file, string name)
    {
        if (ct.ValueKind == JsonValueKind.String) return ct.GetString()!;
        if (ct.ValueKind != JsonValueKind.Array)
            throw new ChatTemplateException($"{file}: field \"chat_template\" must be a string or a list of {{name, template}}");
        var names = new List<string>();
        foreach (var item in ct.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("name", out var n) || !item.TryGetProperty("template", out var t)
                || n.ValueKind != JsonValueKind.String || t.ValueKind != JsonValueKind.String)
                throw new ChatTemplateException($"{file}: every entry of \"chat_template\" needs string fields \"name\" and \"template\"");
            if (n.GetString() == name) return t.GetString()!;
            names.Add(n.GetString()!);
        }
        throw new ChatTemplateException($"{file}: \"chat_template\" has no template named '{name}' (has: {string.Join(", ", names)})");
    }

    /// <summary>Special tokens as strings (AddedToken objects give their "content"); missing or null ones are left out.</summary>
    public static Dictionary<string, object?> ReadSpecialTokens(string dir)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var file in new[] { "tokenizer_config.json", "special_tokens_map.json" })
        {
            var path = Path.Combine(dir, file);
            if (!File.Exists(path)) continue;
            using var doc = ParseJson(path);
            foreach (var name in SpecialTokenNames)
            {
                if (result.ContainsKey(name) || !doc.RootElement.TryGetProperty(name, out var v)) continue;
                if (name == "additional_special_tokens")
                {
                    if (v.ValueKind == JsonValueKind.Array)
                        result[name] = v.EnumerateArray().Select(x => (object?)TokenContent(x, path, name)).Where(x => x is not null).ToList();
                    continue;
                }
                var content = TokenContent(v, path, name);
                if (content is not null) result[name] = content;
            }
        }
        return result;
    }

    private static string? TokenContent(JsonElement v, string path, string name) => v.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.String => v.GetString(),
        JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
        _ => throw new ChatTemplateException($"{path}: field \"{name}\" must be a string or an object with \"content\""),
    };

    private static JsonDocument ParseJson(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new ChatTemplateException($"{path}: invalid JSON at line {e.LineNumber + 1}: {e.Message}"); }
    }

    private static string ReadText(string path)
    {
        if (!File.Exists(path)) throw new ChatTemplateException($"{path}: template file not found");
        return File.ReadAllText(path);
    }
}
