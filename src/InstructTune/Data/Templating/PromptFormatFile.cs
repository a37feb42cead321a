using System.Text.Json;

namespace InstructTune.Data.Templating;

/// <summary>
/// instructtune.json beside a run's checkpoints and beside adapter_config.json (or a full model's config.json): the
/// prompt format the weights were trained with (template spec, train-on policies, special tokens, the chat template
/// text). The chat template is also written as chat_template.jinja, as transformers does, so other tools pick it up.
/// <c>itune eval model</c> and <c>itune generate</c> read it to format prompts as in training.
/// </summary>
public static class PromptFormatFile
{
    public const string FileName = "instructtune.json";
    public const string ChatTemplateFile = "chat_template.jinja";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    private sealed record Contents(
        [property: System.Text.Json.Serialization.JsonPropertyName("prompt_format")] PromptFormatRecord PromptFormat);

    public static void Write(string dir, PromptFormatRecord record)
    {
        Directory.CreateDirectory(dir);
        Cache.AtomicFile.WriteAllText(Path.Combine(dir, FileName), JsonSerializer.Serialize(new Contents(record), Json));
        if (record.ChatTemplate != null) Cache.AtomicFile.WriteAllText(Path.Combine(dir, ChatTemplateFile), record.ChatTemplate);
    }

    /// <summary>The recorded format of a folder, or null when it records none; a malformed file is an <see cref="InvalidDataException"/>.</summary>
    public static PromptFormatRecord? TryRead(string dir)
    {
        var path = Path.Combine(dir, FileName);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<Contents>(File.ReadAllText(path))?.PromptFormat; }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}"); }
    }
}
