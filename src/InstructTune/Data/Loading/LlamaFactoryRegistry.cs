using System.Text.Json;
using InstructTune.Data.Records;

namespace InstructTune.Data.Loading;

/// <summary>One entry of LLaMA-Factory's dataset_info.json, resolved against the folder it lives in.</summary>
/// <param name="LocalPath">The file when <c>file_name</c> names one that exists; null for hub-only or missing files.</param>
/// <param name="Missing">Why the entry cannot be loaded here (hub dataset, file absent, unsupported formatting), or null.</param>
public sealed record LlamaFactoryEntry(string Name, string? LocalPath, DataFormat? Format, FieldMap Fields, string? Missing);

/// <summary>
/// Reads LLaMA-Factory's dataset_info.json registry: each entry names a local <c>file_name</c> or a hub dataset
/// (<c>hf_hub_url</c>, <c>ms_hub_url</c>, …), a <c>formatting</c> (alpaca by default, or sharegpt) and column /
/// tag renames. Entries that do not resolve to a local file are listed with the reason instead of failing, as
/// many registry entries point at the hub or at files not shipped. ShareGPT entries whose tags say role/content
/// (e.g. kto_en_demo) are the OpenAI messages layout.
/// </summary>
public static class LlamaFactoryRegistry
{
    public static List<LlamaFactoryEntry> Read(string datasetInfoPath)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(datasetInfoPath))!;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(datasetInfoPath)); }
        catch (JsonException ex)
        {
            throw new DataFormatException($"{datasetInfoPath}:{(ex.LineNumber ?? 0) + 1}: not valid JSON: {ex.Message}");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new DataFormatException($"{datasetInfoPath}: dataset_info.json must be an object of dataset entries");
            var entries = new List<LlamaFactoryEntry>();
            foreach (var e in doc.RootElement.EnumerateObject())
                entries.Add(Entry(e.Name, e.Value, dir));
            return entries;
        }
    }

    private static LlamaFactoryEntry Entry(string name, JsonElement e, string dir)
    {
        string? Str(JsonElement o, string key) => o.ValueKind == JsonValueKind.Object && o.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        var formatting = Str(e, "formatting") ?? "alpaca";
        var map = new Dictionary<string, string>();
        e.TryGetProperty("columns", out var columns);
        e.TryGetProperty("tags", out var tags);
        DataFormat? format = null;
        if (formatting == "alpaca")
        {
            format = DataFormat.Alpaca;
            foreach (var (canon, col) in new[] { ("instruction", "prompt"), ("input", "query"), ("output", "response") })
                if (Str(columns, col) is { } source) map[canon] = source;
        }
        else if (formatting == "sharegpt")
        {
            bool roleContent = Str(tags, "role_tag") is "role" && Str(tags, "content_tag") is "content";
            format = roleContent ? DataFormat.Messages : DataFormat.ShareGpt;
            var messages = Str(columns, "messages") ?? (roleContent ? "messages" : "conversations");
            map[roleContent ? "messages" : "conversations"] = messages;
            if (!roleContent)
            {
                if (Str(tags, "role_tag") is { } r) map["from"] = r;
                if (Str(tags, "content_tag") is { } c) map["value"] = c;
                if (Str(columns, "system") is { } s) map["system"] = s;
                if (Str(columns, "tools") is { } t) map["tools"] = t;
            }
        }
        var file = Str(e, "file_name");
        string? missing = null, local = null;
        if (format == null) missing = $"formatting '{formatting}' is not supported";
        else if (file == null) missing = "hub dataset (no local file_name)";
        else if (!File.Exists(Path.Combine(dir, file)) && !Directory.Exists(Path.Combine(dir, file))) missing = $"file '{file}' is not in {dir}";
        else local = Path.Combine(dir, file);
        return new LlamaFactoryEntry(name, local, format, new FieldMap(map), missing);
    }
}
