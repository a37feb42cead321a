// The two files of a PEFT adapter folder (adapter_config.json, adapter_model.safetensors), checked and opened in one
// place for every method's loader, so each names a missing file or malformed config the same way.
using System.Text.Json;

namespace InstructTune.Peft;

internal static class AdapterFolder
{
    /// <summary>The config and weights paths of <paramref name="dir"/>; a missing one is a FileNotFoundException naming it.</summary>
    public static (string ConfigPath, string WeightsPath) Files(string dir)
    {
        string cfgPath = Path.Combine(dir, "adapter_config.json");
        string weightsPath = Path.Combine(dir, "adapter_model.safetensors");
        if (!File.Exists(cfgPath)) throw new FileNotFoundException($"adapter_config.json not found in {dir}", cfgPath);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"adapter_model.safetensors not found in {dir}", weightsPath);
        return (cfgPath, weightsPath);
    }

    /// <summary>adapter_config.json's root object; malformed JSON is an InvalidDataException naming the file.</summary>
    public static JsonElement ReadConfig(string cfgPath)
    {
        try { return JsonDocument.Parse(File.ReadAllText(cfgPath)).RootElement; }
        catch (JsonException e) { throw new InvalidDataException($"{cfgPath}: malformed JSON: {e.Message}", e); }
    }
}
