// Instruction marker tokens (model.instruction_aware.marker_tokens: [open, close]), what transformers does with
//   tokenizer.add_special_tokens({"additional_special_tokens": [open, close]})
//   model.resize_token_embeddings(len(tokenizer))            # mean_resizing=True, the default
//   tokenizer.save_pretrained(out); model.save_pretrained(out)
// Tokenizer: each marker becomes an added token {special: true, normalized: false, lstrip/rstrip/single_word: false}
// with the next id, V0 = max(tokenizer size, model vocab_size) (a model whose vocabulary is padded past the tokenizer
// keeps its padding rows as they are); tokenizer.json's added_tokens and tokenizer_config.json's added_tokens_decoder /
// additional_special_tokens list them, so every command that loads the saved folder encodes them as the same single ids.
// Model: LlamaCheckpoint.Load(dir, vocabSize) appends the rows (embedding and untied lm_head), each = the mean of the
// old rows; config.json's vocab_size follows. The data pipeline wraps every instruction span in the markers
// (Data.Templating.InstructionMarkerText), and instructtune.json records them (prompt_format.instruction_markers).
// A marker that already is a token of the tokenizer, or encodes to a single existing id, is refused naming the key.
using System.Text.Json.Nodes;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;

namespace InstructTune.Models.InstructionAware;

/// <summary>The tokenizer extended with the markers: the in-memory tokenizer is parsed from the very tokenizer.json text
/// <see cref="Save"/> writes, so training and every later load agree on the ids.</summary>
public sealed record MarkerVocabulary(HfTokenizer Tokenizer, IReadOnlyList<string> Markers, int FirstId, string TokenizerJson, string? TokenizerConfigJson)
{
    /// <summary>The vocabulary the model is resized to: the markers' ids end there.</summary>
    public int VocabSize => FirstId + Markers.Count;

    /// <summary>Writes tokenizer.json (and tokenizer_config.json when the source had one) into dir, replacing copies of the originals.</summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        Data.Cache.AtomicFile.WriteAllText(Path.Combine(dir, "tokenizer.json"), TokenizerJson);
        if (TokenizerConfigJson != null) Data.Cache.AtomicFile.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), TokenizerConfigJson);
        // special_tokens_map.json names BOS/EOS where tokenizer_config.json does not (an adapter folder has no copy).
        if (SourceDir != null && Path.Combine(SourceDir, "special_tokens_map.json") is var map && File.Exists(map)
            && Path.GetFullPath(SourceDir) != Path.GetFullPath(dir))
            File.Copy(map, Path.Combine(dir, "special_tokens_map.json"), overwrite: true);
    }

    /// <summary>The folder of the tokenizer the markers were added to.</summary>
    public string? SourceDir { get; init; }
}

public static class MarkerTokens
{
    public const string Key = "model.instruction_aware.marker_tokens";

    /// <summary>
    /// Adds <paramref name="markers"/> [open, close] to the tokenizer loaded from <paramref name="tokenizerPath"/> (a
    /// folder or a tokenizer.json file); refuses, naming the key, a list that is not two distinct non-blank strings, a
    /// tokenizer without tokenizer.json, and a marker that collides with an existing token.
    /// </summary>
    public static MarkerVocabulary Add(ITokenizer tokenizer, string tokenizerPath, IReadOnlyList<string> markers, int modelVocab)
    {
        if (markers.Count != 2 || markers.Any(string.IsNullOrWhiteSpace) || markers[0] == markers[1])
            throw new ConfigException($"{Key}: needs two distinct non-blank markers [open, close], e.g. [\"[INST]\", \"[/INST]\"]; got [{string.Join(", ", markers.Select(m => $"\"{m}\""))}]", Key);
        if (markers.Any(m => m != m.Trim()))
            throw new ConfigException($"{Key}: a marker must not start or end with white space (\"{markers.First(m => m != m.Trim())}\")", Key);
        string json = Directory.Exists(tokenizerPath) ? Path.Combine(tokenizerPath, "tokenizer.json") : tokenizerPath;
        if (tokenizer is not HfTokenizer || !File.Exists(json) || !json.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            throw new ConfigException($"{Key}: adds tokens to a tokenizer.json tokenizer; {tokenizerPath} has none (SentencePiece .model files are not extended)", Key);
        foreach (var m in markers)
        {
            if (tokenizer.TokenToId(m) is int id)
                throw new ConfigException($"{Key}: marker \"{m}\" collides with an existing token (id {id}) of the tokenizer; choose a new string " +
                    "(a template's own markers, such as llama2's [INST] or chatml's <|im_start|>, need no marker_tokens)", Key);
            var ids = tokenizer.Encode(m).Ids;
            if (ids.Length == 1)
                throw new ConfigException($"{Key}: marker \"{m}\" collides with an existing token: it encodes to the single id {ids[0]} (\"{tokenizer.IdToToken(ids[0])}\"); choose a new string", Key);
        }
        int first = Math.Max(tokenizer.VocabSize, modelVocab);
        JsonObject root;
        try { root = JsonNode.Parse(File.ReadAllText(json)) as JsonObject ?? throw new TokenizerFormatException("not an object"); }
        catch (System.Text.Json.JsonException e) { throw new ConfigException($"{Key}: {json}: not valid JSON: {e.Message}", Key); }
        if (root["added_tokens"] is not JsonArray added) root["added_tokens"] = added = [];
        for (int i = 0; i < markers.Count; i++)
            added.Add(new JsonObject
            {
                ["id"] = first + i, ["content"] = markers[i], ["single_word"] = false, ["lstrip"] = false,
                ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            });
        string text = root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        var extended = Tokenizers.TokenizerJson.Parse(text);
        extended.SetSpecialTokens(new SpecialTokenIds(tokenizer.BosId, tokenizer.EosId, tokenizer.PadId, tokenizer.UnkId));
        var source = Path.GetDirectoryName(Path.GetFullPath(json))!;
        return new MarkerVocabulary(extended, [.. markers], first, text, ConfigJson(Path.Combine(source, "tokenizer_config.json"), markers, first)) { SourceDir = source };
    }

    // tokenizer_config.json as transformers' save_pretrained writes it after add_special_tokens: the new ids in
    // added_tokens_decoder, the markers in additional_special_tokens.
    private static string? ConfigJson(string path, IReadOnlyList<string> markers, int first)
    {
        if (!File.Exists(path)) return null;
        JsonObject root;
        try { root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? []; }
        catch (System.Text.Json.JsonException e) { throw new ConfigException($"{Key}: {path}: not valid JSON: {e.Message}", Key); }
        if (root["added_tokens_decoder"] is not JsonObject decoder) root["added_tokens_decoder"] = decoder = [];
        if (root["additional_special_tokens"] is not JsonArray extra) root["additional_special_tokens"] = extra = [];
        for (int i = 0; i < markers.Count; i++)
        {
            decoder[(first + i).ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["content"] = markers[i], ["lstrip"] = false, ["normalized"] = false, ["rstrip"] = false, ["single_word"] = false, ["special"] = true,
            };
            extra.Add(markers[i]);
        }
        return root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>The config's markers added to the run's tokenizer, or null when the key is empty.</summary>
    public static MarkerVocabulary? FromConfig(TrainConfig config, ITokenizer tokenizer, string tokenizerPath, int modelVocab) =>
        config.Model.InstructionAware.MarkerTokens is { Count: > 0 } m ? Add(tokenizer, tokenizerPath, m, modelVocab) : null;
}
