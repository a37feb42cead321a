namespace InstructTune.Data.Loading;

/// <summary>The on-disk layouts the loaders read (the names are the CLI's <c>--format</c> values).</summary>
/// <remarks><see cref="Text"/> is plain pre-training text (JSONL or a JSON array of <c>{"text": …}</c>), learned on every token.
/// <see cref="Parquet"/> is a Parquet file or HF dataset folder whose layout is told by its columns; a Parquet path with
/// another format (alpaca, messages, …) is read with that layout.</remarks>
public enum DataFormat { Alpaca, Dolly, ShareGpt, Messages, Sni, Gsm8k, Csv, SelfInstruct, Text, Parquet }

public static class DataFormats
{
    public static DataFormat Parse(string name) => name.ToLowerInvariant() switch
    {
        "alpaca" => DataFormat.Alpaca,
        "dolly" => DataFormat.Dolly,
        "sharegpt" => DataFormat.ShareGpt,
        "messages" or "openai" => DataFormat.Messages,
        "sni" or "natural-instructions" => DataFormat.Sni,
        "gsm8k" => DataFormat.Gsm8k,
        "csv" => DataFormat.Csv,
        "self-instruct" or "selfinstruct" => DataFormat.SelfInstruct,
        "text" => DataFormat.Text,
        "parquet" => DataFormat.Parquet,
        _ => throw new ArgumentException(
            $"unknown data format '{name}' (expected alpaca, dolly, sharegpt, messages, sni, gsm8k, csv, self-instruct, text, parquet)"),
    };

    /// <summary>The canonical field names a format reads; a <see cref="FieldMap"/> renames them.</summary>
    public static IReadOnlyList<string> CanonicalFields(DataFormat format) => format switch
    {
        DataFormat.Alpaca or DataFormat.Csv => ["instruction", "input", "output", "task"],
        DataFormat.Dolly => ["instruction", "context", "response", "category"],
        DataFormat.ShareGpt => ["conversations", "from", "value", "system", "tools"],
        DataFormat.Messages => ["messages", "role", "content"],
        DataFormat.Gsm8k => ["question", "answer"],
        DataFormat.SelfInstruct => ["instruction", "instances", "input", "output", "name"],
        DataFormat.Sni => ["Definition", "Instances", "input", "output"],
        DataFormat.Text => ["text"],
        _ => [],
    };
}

/// <summary>
/// Renames fields for files whose columns differ from a format's canonical names
/// (e.g. <c>prompt→instruction, completion→output</c>); unmapped names read as themselves.
/// </summary>
public sealed class FieldMap
{
    private readonly Dictionary<string, string> _map;

    public FieldMap(IReadOnlyDictionary<string, string>? canonicalToSource = null) =>
        _map = canonicalToSource == null ? [] : new Dictionary<string, string>(canonicalToSource);

    public static FieldMap Identity { get; } = new();

    /// <summary>Parses "instruction=prompt,output=completion".</summary>
    public static FieldMap Parse(string? spec)
    {
        var map = new Dictionary<string, string>();
        if (string.IsNullOrWhiteSpace(spec)) return new FieldMap(map);
        foreach (var pair in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0 || eq == pair.Length - 1)
                throw new ArgumentException($"field mapping '{pair}' is not of the form canonical=source");
            map[pair[..eq].Trim()] = pair[(eq + 1)..].Trim();
        }
        return new FieldMap(map);
    }

    /// <summary>The map as "canonical=source,…" (the form <see cref="Parse"/> reads), or null when empty.</summary>
    public string? Spec => _map.Count == 0 ? null : string.Join(",", _map.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));

    public string this[string canonical] => _map.TryGetValue(canonical, out var source) ? source : canonical;
}
