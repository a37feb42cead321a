using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace InstructTune.Tokenizers;

/// <summary>
/// Reads a Hugging Face tokenizer.json into an <see cref="HfTokenizer"/>. Every error names the file and the JSON
/// path of the field at fault (missing model, unknown component type, merges that do not parse or name tokens
/// outside the vocabulary).
/// </summary>
public static class TokenizerJson
{
    public static HfTokenizer Load(string path)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new TokenizerFormatException($"{path}: not valid JSON: {e.Message}", e); }
        using (doc)
        {
            try { return Read(doc.RootElement); }
            catch (TokenizerFormatException e) { throw new TokenizerFormatException($"{path}: {e.Message}", e); }
        }
    }

    public static HfTokenizer Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return Read(doc.RootElement);
    }

    private static HfTokenizer Read(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException("the top level is not a JSON object");
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException("missing \"model\" object");
        var added = ReadAddedTokens(root);
        var m = ReadModel(model);
        return new HfTokenizer(m, added,
            Optional(root, "normalizer", e => ReadNormalizer(e, "normalizer")),
            Optional(root, "pre_tokenizer", e => ReadPreTokenizer(e, "pre_tokenizer")),
            Optional(root, "post_processor", e => ReadPostProcessor(e, "post_processor", m, added)),
            Optional(root, "decoder", e => ReadDecoder(e, "decoder")));
    }

    private static T? Optional<T>(JsonElement root, string name, Func<JsonElement, T> read) where T : class =>
        root.TryGetProperty(name, out var e) && e.ValueKind != JsonValueKind.Null ? read(e) : null;

    private static AddedVocabulary ReadAddedTokens(JsonElement root)
    {
        var list = new List<AddedToken>();
        if (root.TryGetProperty("added_tokens", out var arr) && arr.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var t in arr.EnumerateArray())
            {
                string where = $"added_tokens[{i++}]";
                list.Add(new AddedToken(
                    Int(t, "id", where), Str(t, "content", where),
                    Bool(t, "single_word"), Bool(t, "lstrip"), Bool(t, "rstrip"),
                    Bool(t, "normalized", true), Bool(t, "special")));
            }
        }
        return new AddedVocabulary(list);
    }

    private static ITokenModel ReadModel(JsonElement m)
    {
        string type = m.TryGetProperty("type", out var te) && te.ValueKind == JsonValueKind.String ? te.GetString()!
            : m.TryGetProperty("merges", out _) ? "BPE"
            : m.TryGetProperty("vocab", out var va) && va.ValueKind == JsonValueKind.Array ? "Unigram"
            : m.TryGetProperty("continuing_subword_prefix", out _) ? "WordPiece"
            : throw new TokenizerFormatException("model: missing \"type\"");
        switch (type)
        {
            case "BPE":
            {
                var vocab = ReadVocab(m, "model.vocab");
                var merges = ReadMerges(m);
                var o = new BpeOptions(OptStr(m, "unk_token"), OptStr(m, "continuing_subword_prefix"),
                    OptStr(m, "end_of_word_suffix"), Bool(m, "fuse_unk"), Bool(m, "byte_fallback"), Bool(m, "ignore_merges"));
                return new BpeModel(vocab, merges, o);
            }
            case "WordPiece":
                return new WordPieceModel(ReadVocab(m, "model.vocab"), OptStr(m, "unk_token") ?? "[UNK]",
                    OptStr(m, "continuing_subword_prefix") ?? "##",
                    m.TryGetProperty("max_input_chars_per_word", out var mx) && mx.ValueKind == JsonValueKind.Number ? mx.GetInt32() : 100);
            case "Unigram":
            {
                if (!m.TryGetProperty("vocab", out var v) || v.ValueKind != JsonValueKind.Array)
                    throw new TokenizerFormatException("model.vocab: Unigram needs an array of [piece, score]");
                var pieces = new List<(string, double)>();
                int i = 0;
                foreach (var p in v.EnumerateArray())
                {
                    if (p.ValueKind != JsonValueKind.Array || p.GetArrayLength() != 2 || p[0].ValueKind != JsonValueKind.String)
                        throw new TokenizerFormatException($"model.vocab[{i}]: expected [piece, score]");
                    pieces.Add((p[0].GetString()!, p[1].GetDouble()));
                    i++;
                }
                int? unk = m.TryGetProperty("unk_id", out var u) && u.ValueKind == JsonValueKind.Number ? u.GetInt32() : null;
                return new UnigramModel(pieces, unk, Bool(m, "byte_fallback"));
            }
            default:
                throw new TokenizerFormatException($"model.type: unsupported model type \"{type}\" (BPE, WordPiece and Unigram are supported)");
        }
    }

    private static Dictionary<string, int> ReadVocab(JsonElement m, string where)
    {
        if (!m.TryGetProperty("vocab", out var v) || v.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException($"{where}: missing or not an object of token → id");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in v.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id))
                throw new TokenizerFormatException($"{where}[{JsonSerializer.Serialize(p.Name)}]: id is not an integer");
            vocab[p.Name] = id;
        }
        return vocab;
    }

    private static List<(string, string)> ReadMerges(JsonElement m)
    {
        var merges = new List<(string, string)>();
        if (!m.TryGetProperty("merges", out var arr) || arr.ValueKind == JsonValueKind.Null) return merges;
        if (arr.ValueKind != JsonValueKind.Array) throw new TokenizerFormatException("model.merges: not an array");
        int i = 0;
        foreach (var e in arr.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.String)
            {
                var s = e.GetString()!;
                var parts = s.Split(' ');
                if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                    throw new TokenizerFormatException($"model.merges[{i}]: \"{s}\" is not two tokens separated by one space");
                merges.Add((parts[0], parts[1]));
            }
            else if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2
                     && e[0].ValueKind == JsonValueKind.String && e[1].ValueKind == JsonValueKind.String)
                merges.Add((e[0].GetString()!, e[1].GetString()!));
            else
                throw new TokenizerFormatException($"model.merges[{i}]: expected \"a b\" or [\"a\", \"b\"], got {e.GetRawText()}");
            i++;
        }
        return merges;
    }

    private static string TypeOf(JsonElement e, string where)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new TokenizerFormatException($"{where}: expected an object");
        if (!e.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String)
            throw new TokenizerFormatException($"{where}: missing \"type\"");
        return t.GetString()!;
    }

    private static INormalizer ReadNormalizer(JsonElement e, string where)
    {
        string type = TypeOf(e, where);
        switch (type)
        {
            case "Sequence":
                return new SequenceNormalizer(Items(e, "normalizers", where).Select((x, i) => ReadNormalizer(x, $"{where}.normalizers[{i}]")).ToList());
            case "NFC": return new UnicodeNormalizer(NormalizationForm.FormC);
            case "NFD": return new UnicodeNormalizer(NormalizationForm.FormD);
            case "NFKC": return new UnicodeNormalizer(NormalizationForm.FormKC);
            case "NFKD": return new UnicodeNormalizer(NormalizationForm.FormKD);
            case "Lowercase": return new LowercaseNormalizer();
            case "StripAccents": return new StripAccentsNormalizer();
            case "Strip": return new StripNormalizer(Bool(e, "strip_left", true), Bool(e, "strip_right", true));
            case "Prepend": return new PrependNormalizer(Str(e, "prepend", where));
            case "Replace":
            {
                var (lit, re) = ReadPattern(e, where);
                return new ReplaceNormalizer(lit, re, Str(e, "content", where));
            }
            default:
                throw new TokenizerFormatException($"{where}.type: unsupported normalizer \"{type}\" (supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Prepend, Replace)");
        }
    }

    private static IPreTokenizer ReadPreTokenizer(JsonElement e, string where)
    {
        string type = TypeOf(e, where);
        switch (type)
        {
            case "Sequence":
                return new SequencePreTokenizer(Items(e, "pretokenizers", where).Select((x, i) => ReadPreTokenizer(x, $"{where}.pretokenizers[{i}]")).ToList());
            case "ByteLevel":
                return new ByteLevelPreTokenizer(Bool(e, "add_prefix_space", true), Bool(e, "use_regex", true));
            case "Split":
            {
                var (lit, _) = ReadPattern(e, where, compile: false);
                var finder = lit != null ? SplitPatterns.ForLiteral(lit) : SplitPatterns.ForRegex(RegexSource(e, where));
                return new SplitPreTokenizer(finder, Behavior(e, where), Bool(e, "invert"));
            }
            case "Digits":
                return new PredicatePreTokenizer(cp => UnicodeClass.ClassifySlow(cp) == UnicodeClass.Number,
                    Bool(e, "individual_digits") ? SplitBehavior.Isolated : SplitBehavior.Contiguous);
            case "Metaspace":
            {
                string rep = OptStr(e, "replacement") ?? "▁";
                if (rep.Length != 1) throw new TokenizerFormatException($"{where}.replacement: must be one character");
                string scheme = OptStr(e, "prepend_scheme") ?? (Bool(e, "add_prefix_space", true) ? "always" : "never");
                return new MetaspacePreTokenizer(rep[0], scheme, Bool(e, "split", true));
            }
            case "Whitespace": return new WhitespacePreTokenizer();
            case "WhitespaceSplit": return new PredicatePreTokenizer(UnicodeClass.IsWhiteSpace, SplitBehavior.Removed);
            case "Punctuation":
                return new PredicatePreTokenizer(UnicodeClass.IsPunctuation,
                    e.TryGetProperty("behavior", out _) ? Behavior(e, where) : SplitBehavior.Isolated);
            case "BertPreTokenizer":
                return new SequencePreTokenizer([
                    new PredicatePreTokenizer(UnicodeClass.IsWhiteSpace, SplitBehavior.Removed),
                    new PredicatePreTokenizer(UnicodeClass.IsPunctuation, SplitBehavior.Isolated)]);
            default:
                throw new TokenizerFormatException($"{where}.type: unsupported pre-tokenizer \"{type}\" (supported: Sequence, ByteLevel, Split, Digits, Metaspace, Whitespace, WhitespaceSplit, Punctuation, BertPreTokenizer)");
        }
    }

    private static IPostProcessor ReadPostProcessor(JsonElement e, string where, ITokenModel model, AddedVocabulary added)
    {
        string type = TypeOf(e, where);
        switch (type)
        {
            case "Sequence":
                return new SequenceProcessor(Items(e, "processors", where).Select((x, i) => ReadPostProcessor(x, $"{where}.processors[{i}]", model, added)).ToList());
            case "ByteLevel":
                return new ByteLevelProcessor(Bool(e, "trim_offsets", true), Bool(e, "add_prefix_space", true));
            case "TemplateProcessing":
            {
                var specials = new Dictionary<string, int[]>();
                if (e.TryGetProperty("special_tokens", out var st) && st.ValueKind == JsonValueKind.Object)
                    foreach (var p in st.EnumerateObject())
                    {
                        if (!p.Value.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
                            throw new TokenizerFormatException($"{where}.special_tokens.{p.Name}: missing \"ids\"");
                        specials[p.Name] = ids.EnumerateArray().Select(x => x.GetInt32()).ToArray();
                    }
                var single = new List<int[]?>();
                int i = 0;
                foreach (var item in Items(e, "single", where))
                {
                    string iw = $"{where}.single[{i++}]";
                    if (item.TryGetProperty("Sequence", out _)) single.Add(null);
                    else if (item.TryGetProperty("SpecialToken", out var sp))
                    {
                        var id = Str(sp, "id", iw);
                        single.Add(specials.TryGetValue(id, out var ids) ? ids
                            : throw new TokenizerFormatException($"{iw}: special token \"{id}\" is not in special_tokens"));
                    }
                    else throw new TokenizerFormatException($"{iw}: expected Sequence or SpecialToken");
                }
                return new TemplateProcessor(single);
            }
            case "RobertaProcessing":
            case "BertProcessing":
            {
                int Tok(string name)
                {
                    if (!e.TryGetProperty(name, out var a) || a.ValueKind != JsonValueKind.Array || a.GetArrayLength() != 2)
                        throw new TokenizerFormatException($"{where}.{name}: expected [token, id]");
                    return a[1].GetInt32();
                }
                return new ClsSepProcessor(Tok("cls"), Tok("sep"));
            }
            default:
                throw new TokenizerFormatException($"{where}.type: unsupported post-processor \"{type}\" (supported: Sequence, ByteLevel, TemplateProcessing, RobertaProcessing, BertProcessing)");
        }
    }

    private static IDecoder ReadDecoder(JsonElement e, string where)
    {
        string type = TypeOf(e, where);
        switch (type)
        {
            case "Sequence":
                return new SequenceDecoder(Items(e, "decoders", where).Select((x, i) => ReadDecoder(x, $"{where}.decoders[{i}]")).ToList());
            case "ByteLevel": return new ByteLevelDecoder();
            case "ByteFallback": return new ByteFallbackDecoder();
            case "Fuse": return new FuseDecoder();
            case "Strip":
            {
                var c = Str(e, "content", where);
                if (c.Length != 1) throw new TokenizerFormatException($"{where}.content: must be one character");
                return new StripDecoder(c[0], Int(e, "start", where), Int(e, "stop", where));
            }
            case "Replace":
            {
                var (lit, re) = ReadPattern(e, where);
                return new ReplaceDecoder(lit, re, Str(e, "content", where));
            }
            case "Metaspace":
            {
                string rep = OptStr(e, "replacement") ?? "▁";
                string scheme = OptStr(e, "prepend_scheme") ?? (Bool(e, "add_prefix_space", true) ? "always" : "never");
                return new MetaspaceDecoder(rep[0], scheme);
            }
            case "WordPiece": return new WordPieceDecoder(OptStr(e, "prefix") ?? "##", Bool(e, "cleanup", true));
            case "BPEDecoder": return new BpeSuffixDecoder(OptStr(e, "suffix") ?? "</w>");
            default:
                throw new TokenizerFormatException($"{where}.type: unsupported decoder \"{type}\" (supported: Sequence, ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, WordPiece, BPEDecoder)");
        }
    }

    private static SplitBehavior Behavior(JsonElement e, string where)
    {
        var b = OptStr(e, "behavior") ?? "Isolated";
        return Enum.TryParse<SplitBehavior>(b, out var r) ? r
            : throw new TokenizerFormatException($"{where}.behavior: unknown behaviour \"{b}\"");
    }

    private static string RegexSource(JsonElement e, string where) =>
        e.GetProperty("pattern").TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()!
            : throw new TokenizerFormatException($"{where}.pattern: expected {{\"String\": …}} or {{\"Regex\": …}}");

    private static (string? Literal, Regex? Regex) ReadPattern(JsonElement e, string where, bool compile = true)
    {
        if (!e.TryGetProperty("pattern", out var p) || p.ValueKind != JsonValueKind.Object)
            throw new TokenizerFormatException($"{where}.pattern: missing");
        if (p.TryGetProperty("String", out var s) && s.ValueKind == JsonValueKind.String) return (s.GetString()!, null);
        var src = RegexSource(e, where);
        if (!compile) return (null, null);
        try { return (null, new Regex(src, RegexOptions.CultureInvariant)); }
        catch (ArgumentException x) { throw new TokenizerFormatException($"{where}.pattern: unsupported regex: {x.Message}", x); }
    }

    private static IEnumerable<JsonElement> Items(JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out var a) && a.ValueKind == JsonValueKind.Array ? a.EnumerateArray()
            : throw new TokenizerFormatException($"{where}.{name}: missing array");

    private static bool Bool(JsonElement e, string name, bool dflt = false) =>
        e.TryGetProperty(name, out var v) ? v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => dflt } : dflt;

    private static string? OptStr(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static string Str(JsonElement e, string name, string where) =>
        OptStr(e, name) ?? throw new TokenizerFormatException($"{where}.{name}: missing string");

    private static int Int(JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i
            : throw new TokenizerFormatException($"{where}.{name}: missing integer");
}
