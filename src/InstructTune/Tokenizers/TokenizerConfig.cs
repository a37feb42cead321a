using System.Text.Json;

namespace InstructTune.Tokenizers;

/// <summary>The special-token names of a tokenizer_config.json (bos/eos/pad/unk, each a string or an AddedToken
/// object with "content"), plus add_bos_token / add_eos_token when present.</summary>
public sealed record TokenizerConfig(string? Bos, string? Eos, string? Pad, string? Unk, bool? AddBos, bool? AddEos)
{
    public static TokenizerConfig Empty { get; } = new(null, null, null, null, null, null);

    /// <summary>tokenizer_config.json, with special_tokens_map.json (same folder) filling the names it lacks.</summary>
    public static TokenizerConfig Load(string path)
    {
        var config = LoadOne(path);
        var map = LoadOne(Path.Combine(Path.GetDirectoryName(path) ?? ".", "special_tokens_map.json"));
        return new TokenizerConfig(config.Bos ?? map.Bos, config.Eos ?? map.Eos, config.Pad ?? map.Pad, config.Unk ?? map.Unk,
            config.AddBos, config.AddEos);
    }

    private static TokenizerConfig LoadOne(string path)
    {
        if (!File.Exists(path)) return Empty;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{path}: the top level is not a JSON object");
            return new TokenizerConfig(Token(r, "bos_token", path), Token(r, "eos_token", path), Token(r, "pad_token", path),
                Token(r, "unk_token", path), Flag(r, "add_bos_token"), Flag(r, "add_eos_token"));
        }
        catch (JsonException e) { throw new TokenizerFormatException($"{path}: not valid JSON: {e.Message}", e); }
    }

    private static string? Token(JsonElement r, string name, string path)
    {
        if (!r.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.String) return v.GetString();
        if (v.ValueKind == JsonValueKind.Object && v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String)
            return c.GetString();
        throw new TokenizerFormatException($"{path}: {name} must be a string or an object with \"content\"");
    }

    private static bool? Flag(JsonElement r, string name) =>
        r.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    /// <summary>Resolves the names to ids; a name the tokenizer does not know is an error naming the field.</summary>
    public SpecialTokenIds Resolve(ITokenizer tok, string path, SpecialTokenIds fallback)
    {
        int? Id(string? name, string field, int? dflt)
        {
            if (name == null) return dflt;
            return tok.TokenToId(name) ?? throw new TokenizerFormatException($"{path}: {field} \"{name}\" is not a token of the tokenizer");
        }
        return new SpecialTokenIds(Id(Bos, "bos_token", fallback.Bos), Id(Eos, "eos_token", fallback.Eos),
            Id(Pad, "pad_token", fallback.Pad), Id(Unk, "unk_token", fallback.Unk));
    }
}
