// The tokenizer of a checkpoint folder as GGUF metadata (the keys llama.cpp's vocabulary loader reads):
//   * tokenizer.model = SentencePiece ("llama" in GGUF): tokenizer.ggml.tokens, .scores and .token_type straight
//     from the pieces of tokenizer.model (types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte),
//     and add_space_prefix from its normalizer spec;
//   * tokenizer.json with a byte-level BPE model ("gpt2" in GGUF): tokens in id order, .merges as "left right",
//     token types 1 normal / 3 control (special added tokens) / 4 user-defined (other added tokens), and the
//     pre-tokenizer as the name llama.cpp knows it (tokenizer.ggml.pre), recognised from the split regex:
//     Llama-3's (digits in runs of 1-3) = "llama-bpe", Qwen2's (single digits) = "qwen2", GPT-2's ByteLevel
//     regex = "gpt-2". Any other pre-tokenizer is refused: llama.cpp would split text differently.
// Ids the model has beyond the tokenizer (vocab_size padding) become "[PAD{id}]" of type unused, as llama.cpp's
// converter writes them. BOS/EOS/UNK/PAD ids and whether BOS/EOS are added come from our own tokenizer (what
// `itune tokenize` does), so llama.cpp adds exactly what we add.
using System.Text.Json;
using InstructTune.Tokenizers;
using InstructTune.Tokenizers.SentencePiece;

namespace InstructTune.Export.Gguf;

public static class GgufTokenizer
{
    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5;

    /// <summary>Writes the tokenizer.ggml.* keys for the tokenizer of <paramref name="dir"/>, padded to <paramref name="vocabSize"/>.</summary>
    public static void Write(GgufWriter w, string dir, int vocabSize, ITokenizer tokenizer)
    {
        string spm = Path.Combine(dir, "tokenizer.model"), json = Path.Combine(dir, "tokenizer.json");
        List<string> tokens;
        List<int> types;
        if (File.Exists(spm))
        {
            var proto = SentencePieceModelProto.Parse(File.ReadAllBytes(spm), spm);
            if (proto.ModelType is not (1 or 2))
                throw new InvalidDataException($"{spm}: SentencePiece model type {proto.ModelType} (only unigram and BPE models export to GGUF)");
            tokens = proto.Pieces.Select(p => p.Piece).ToList();
            types = proto.Pieces.Select(p => (int)p.Type).ToList();
            var scores = proto.Pieces.Select(p => p.Score).ToList();
            Check(tokens.Count, vocabSize, spm);
            for (int i = tokens.Count; i < vocabSize; i++) { tokens.Add($"[PAD{i}]"); types.Add(Unused); scores.Add(-1000f); }
            w.Add("tokenizer.ggml.model", "llama");
            w.Add("tokenizer.ggml.pre", "default");
            w.Add("tokenizer.ggml.tokens", tokens);
            w.Add("tokenizer.ggml.scores", scores);
            w.Add("tokenizer.ggml.token_type", types);
            w.Add("tokenizer.ggml.add_space_prefix", proto.AddDummyPrefix);
        }
        else if (File.Exists(json))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            var root = doc.RootElement;
            var model = root.GetProperty("model");
            string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
            if (type != "BPE" || !IsByteLevel(root))
                throw new InvalidDataException($"{json}: model type \"{type}\" without a ByteLevel pre-tokenizer; GGUF export handles byte-level BPE (tokenizer.json) and SentencePiece (tokenizer.model)");
            var byId = new Dictionary<int, string>();
            foreach (var p in model.GetProperty("vocab").EnumerateObject()) byId[p.Value.GetInt32()] = p.Name;
            var kinds = new Dictionary<int, int>();
            if (root.TryGetProperty("added_tokens", out var added))
                foreach (var a in added.EnumerateArray())
                {
                    int id = a.GetProperty("id").GetInt32();
                    byId[id] = a.GetProperty("content").GetString()!;
                    kinds[id] = a.TryGetProperty("special", out var sp) && sp.GetBoolean() ? Control : UserDefined;
                }
            int count = byId.Count == 0 ? 0 : byId.Keys.Max() + 1;
            Check(count, vocabSize, json);
            tokens = []; types = [];
            for (int i = 0; i < vocabSize; i++)
            {
                if (byId.TryGetValue(i, out var s)) { tokens.Add(s); types.Add(kinds.GetValueOrDefault(i, Normal)); }
                else { tokens.Add($"[PAD{i}]"); types.Add(Unused); }
            }
            var merges = model.GetProperty("merges").EnumerateArray().Select(m => m.ValueKind == JsonValueKind.String
                ? m.GetString()! : string.Join(' ', m.EnumerateArray().Select(x => x.GetString()))).ToList();
            w.Add("tokenizer.ggml.model", "gpt2");
            w.Add("tokenizer.ggml.pre", PreName(root, json));
            w.Add("tokenizer.ggml.tokens", tokens);
            w.Add("tokenizer.ggml.token_type", types);
            w.Add("tokenizer.ggml.merges", merges);
        }
        else throw new FileNotFoundException($"{dir}: no tokenizer.model or tokenizer.json; llama.cpp needs the tokenizer inside the GGUF file");

        if (tokenizer.BosId is { } bos) w.Add("tokenizer.ggml.bos_token_id", (uint)bos);
        if (tokenizer.EosId is { } eos) w.Add("tokenizer.ggml.eos_token_id", (uint)eos);
        if (tokenizer.UnkId is { } unk) w.Add("tokenizer.ggml.unknown_token_id", (uint)unk);
        if (tokenizer.PadId is { } pad) w.Add("tokenizer.ggml.padding_token_id", (uint)pad);
        var plain = tokenizer.Encode("a", addSpecialTokens: false).Ids;
        var withSpecial = tokenizer.Encode("a", addSpecialTokens: true).Ids;
        w.Add("tokenizer.ggml.add_bos_token", tokenizer.BosId is { } b && withSpecial.Length > plain.Length && withSpecial[0] == b);
        w.Add("tokenizer.ggml.add_eos_token", tokenizer.EosId is { } e && withSpecial.Length > plain.Length && withSpecial[^1] == e);
    }

    private static void Check(int count, int vocabSize, string file)
    {
        if (count > vocabSize)
            throw new InvalidDataException($"{file}: the tokenizer has {count} tokens, more than the model's vocab_size {vocabSize}");
    }

    private static IEnumerable<JsonElement> PreTokenizers(JsonElement root)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var p) || p.ValueKind != JsonValueKind.Object) yield break;
        if (p.GetProperty("type").GetString() == "Sequence")
            foreach (var x in p.GetProperty("pretokenizers").EnumerateArray()) yield return x;
        else yield return p;
    }

    private static bool IsByteLevel(JsonElement root) => PreTokenizers(root).Any(p => p.GetProperty("type").GetString() == "ByteLevel");

    private static string PreName(JsonElement root, string file)
    {
        var pres = PreTokenizers(root).ToList();
        var split = pres.FirstOrDefault(p => p.GetProperty("type").GetString() == "Split");
        if (split.ValueKind == JsonValueKind.Object)
        {
            string regex = split.GetProperty("pattern").TryGetProperty("Regex", out var r) ? r.GetString() ?? "" : "";
            bool contractions = regex.StartsWith("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|", StringComparison.Ordinal)
                             && regex.EndsWith("| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", StringComparison.Ordinal);
            if (contractions && regex.Contains("|\\p{N}{1,3}|", StringComparison.Ordinal)) return "llama-bpe";
            if (contractions && regex.Contains("|\\p{N}|", StringComparison.Ordinal)) return "qwen2";
            throw new InvalidDataException($"{file}: pre-tokenizer split regex {regex} is not one llama.cpp knows (Llama-3, Qwen2, GPT-2)");
        }
        var bl = pres.Single(p => p.GetProperty("type").GetString() == "ByteLevel");
        if (bl.TryGetProperty("use_regex", out var ur) && !ur.GetBoolean())
            throw new InvalidDataException($"{file}: ByteLevel pre-tokenizer without a regex is not one llama.cpp knows");
        return "gpt-2";
    }
}
