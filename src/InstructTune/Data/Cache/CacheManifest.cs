using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace InstructTune.Data.Cache;

/// <summary>One input file as hashed for the cache key.</summary>
public sealed record InputHash(string Path, long Bytes, string Sha256);

/// <summary>
/// manifest.json of a prepared dataset: what went in (input file hashes, tokenizer hash, settings and their hash),
/// the combined key, the task vocabulary, and the shards with their own hashes. It is written last and atomically,
/// so its presence means the shards beside it are complete.
/// </summary>
public sealed record CacheManifest(
    [property: JsonPropertyName("version")] int Version,
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("inputs")] IReadOnlyList<InputHash> Inputs,
    [property: JsonPropertyName("tokenizer_sha256")] string TokenizerSha256,
    [property: JsonPropertyName("settings")] IReadOnlyDictionary<string, string> Settings,
    [property: JsonPropertyName("settings_sha256")] string SettingsSha256,
    [property: JsonPropertyName("tasks")] IReadOnlyList<string> Tasks,
    [property: JsonPropertyName("shards")] IReadOnlyList<ShardInfo> Shards)
{
    public const string FileName = "manifest.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static string Sha256OfFile(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(fs));
    }

    public static string Sha256OfText(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    /// <summary>Hashes a file, or every file of a folder (sorted by name), for inputs and tokenizers.</summary>
    public static List<InputHash> HashPath(string path)
    {
        var files = Directory.Exists(path)
            ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList()
            : [path];
        foreach (var f in files) Common.FileKind.RequireRegularFile(f, "input"); // a FIFO would block the hash forever
        return files.Select(f => new InputHash(Path.GetFullPath(f), new FileInfo(f).Length, Sha256OfFile(f))).ToList();
    }

    /// <summary>The tokenizer's hash: its file, or the tokenizer files of its folder.</summary>
    public static string TokenizerHash(string path)
    {
        var files = Directory.Exists(path)
            ? new[] { "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "spiece.model", "special_tokens_map.json" }
                .Select(n => System.IO.Path.Combine(path, n)).Where(File.Exists).ToList()
            : [path];
        return Sha256OfText(string.Join("\n", files.Select(f => System.IO.Path.GetFileName(f) + ":" + Sha256OfFile(f))));
    }

    public static string SettingsHash(IReadOnlyDictionary<string, string> settings) =>
        Sha256OfText(string.Join("\n", settings.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value)));

    /// <summary>The cache key: inputs' content hashes (not their paths), tokenizer and settings.</summary>
    public static string MakeKey(IEnumerable<InputHash> inputs, string tokenizerSha, string settingsSha) =>
        Sha256OfText(string.Join("\n", inputs.Select(i => i.Sha256)) + "\n" + tokenizerSha + "\n" + settingsSha);

    public static CacheManifest? TryRead(string dir)
    {
        var path = System.IO.Path.Combine(dir, FileName);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<CacheManifest>(File.ReadAllText(path)); }
        catch (JsonException) { return null; }
    }

    /// <summary>Whether the shards the manifest lists are all there with their recorded sizes.</summary>
    public bool ShardsPresent(string dir) => Shards.All(s =>
    {
        var f = new FileInfo(System.IO.Path.Combine(dir, s.File));
        return f.Exists && f.Length == ShardFormat.TotalBytes(s.Examples, s.Tokens);
    });

    public void Write(string dir) => AtomicFile.WriteAllText(System.IO.Path.Combine(dir, FileName), JsonSerializer.Serialize(this, Json));
}

/// <summary>Whole-file writes through a temporary file, flushed to disk, then renamed over the target (see <see cref="Common.OutputFile"/>).</summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string text) => Common.OutputFile.WriteAllText(path, text);
}
