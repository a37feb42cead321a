// Reading and writing Hugging Face config.json for the Llama family (llama, mistral, qwen2).
// Every refusal names the key, so a user can fix the file: unknown model types, activations other than SiLU,
// rope scalings we do not implement, missing required sizes.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace InstructTune.Models;

public sealed partial record LlamaConfig
{
    private static readonly Dictionary<string, string> ArchitectureOf = new()
    {
        ["llama"] = "LlamaForCausalLM",
        ["mistral"] = "MistralForCausalLM",
        ["qwen2"] = "Qwen2ForCausalLM",
    };

    private const long MaxConfigBytes = 16L << 20;

    /// <summary>Most decoder layers a config may ask for (the largest published Llama has 126).</summary>
    public const int MaxLayers = 1024;

    /// <summary>Reads config.json; <paramref name="path"/> may be the file or the folder holding it.</summary>
    public static LlamaConfig Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        if (!File.Exists(path)) throw new FileNotFoundException($"config.json not found: {path}", path);
        Common.FileKind.RequireRegularFile(path, "config.json");
        if (new FileInfo(path).Length > MaxConfigBytes)
            throw new InvalidDataException($"{path}: {new FileInfo(path).Length:N0} bytes is too large for a config.json (limit {MaxConfigBytes >> 20} MB)");
        return FromJson(File.ReadAllText(path), path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names the file in error messages.</summary>
    public static LlamaConfig FromJson(string json, string source = "config.json")
    {
        // JsonObject reports duplicate keys lazily with ArgumentException; they are bad input like any other.
        try { return Parse(json, source); }
        catch (ArgumentException e) when (e is not ArgumentOutOfRangeException)
        { throw new InvalidDataException($"{source}: {e.Message}", e); }
    }

    private static LlamaConfig Parse(string json, string source)
    {
        JsonObject root;
        try
        {
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true }) as JsonObject
                   ?? throw new InvalidDataException($"{source}: top level must be a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: malformed JSON: {e.Message}", e);
        }
        var r = new Reader(root, source);

        string modelType = r.RequiredString("model_type");
        if (!ArchitectureOf.TryGetValue(modelType, out var expectedArch))
            throw new InvalidDataException(
                $"{source}: model_type \"{modelType}\" is not supported (supported: llama, mistral, qwen2)");
        if (root["architectures"] is JsonArray archs)
            foreach (var a in archs)
            {
                var name = a?.GetValue<string>();
                if (name != expectedArch)
                    throw new InvalidDataException(
                        $"{source}: architectures entry \"{name}\" is not supported for model_type {modelType} (expected {expectedArch})");
            }

        string act = r.OptionalString("hidden_act") ?? "silu";
        if (act != "silu")
            throw new InvalidDataException($"{source}: hidden_act \"{act}\" is not supported (only silu)");

        int hidden = r.RequiredInt("hidden_size");
        int heads = r.RequiredInt("num_attention_heads");
        int kvHeads = r.OptionalInt("num_key_value_heads") ?? heads;
        int layers = r.RequiredInt("num_hidden_layers");
        int? headDim = r.OptionalInt("head_dim");
        if (hidden <= 0 || heads <= 0 || kvHeads <= 0 || layers <= 0)
            throw new InvalidDataException($"{source}: hidden_size, num_attention_heads, num_key_value_heads and num_hidden_layers must be positive");
        if (heads % kvHeads != 0)
            throw new InvalidDataException($"{source}: num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kvHeads})");
        if (headDim == null && hidden % heads != 0)
            throw new InvalidDataException($"{source}: hidden_size ({hidden}) is not divisible by num_attention_heads ({heads}) and head_dim is absent");
        int hd = headDim ?? hidden / heads;
        if (hd % 2 != 0) throw new InvalidDataException($"{source}: head_dim ({hd}) must be even for rotary embeddings");

        // Rope: classic keys, or the newer "rope_parameters" object that carries rope_theta and the scaling.
        double ropeTheta = r.OptionalDouble("rope_theta") ?? 10000.0;
        RopeScaling? scaling = null;
        if (root["rope_parameters"] is JsonObject rp)
        {
            var rr = new Reader(rp, source + ": rope_parameters");
            ropeTheta = rr.OptionalDouble("rope_theta") ?? ropeTheta;
            scaling = ParseScaling(rp, source, "rope_parameters");
        }
        else if (root["rope_parameters"] is not null)
            throw new InvalidDataException($"{source}: rope_parameters must be an object");
        if (root["rope_scaling"] is JsonObject rs)
            scaling = ParseScaling(rs, source, "rope_scaling");
        else if (root["rope_scaling"] is not null)
            throw new InvalidDataException($"{source}: rope_scaling must be an object or null");

        bool attnBias = r.OptionalBool("attention_bias") ?? false;
        bool qkvBias = modelType == "qwen2";  // Qwen2 always has q/k/v biases and no o bias
        if (modelType == "qwen2" && attnBias)
            throw new InvalidDataException($"{source}: attention_bias is not a Qwen2 option");

        int? window = null;
        int? sw = r.OptionalInt("sliding_window");
        if (modelType == "mistral") window = sw;
        else if (modelType == "qwen2" && (r.OptionalBool("use_sliding_window") ?? false))
        {
            // HF Qwen2 slides only layers ≥ max_window_layers; one window for all layers is what we implement.
            int mwl = r.OptionalInt("max_window_layers") ?? layers;
            if (mwl > 0 && mwl < layers)
                throw new InvalidDataException(
                    $"{source}: use_sliding_window with max_window_layers={mwl} < num_hidden_layers (per-layer windows) is not supported");
            window = mwl == 0 ? sw : null;
        }
        else if (modelType == "llama" && sw != null)
            throw new InvalidDataException($"{source}: sliding_window is not a llama option");
        if (window is <= 0) throw new InvalidDataException($"{source}: sliding_window must be positive");
        // Newer transformers write per-layer attention kinds; one kind for all layers is what we implement.
        if (root["layer_types"] is JsonArray kinds)
        {
            var distinct = kinds.Select(k => k?.GetValueKind() == JsonValueKind.String ? k.GetValue<string>() : "?").Distinct().ToList();
            if (distinct.Count > 1 || distinct.Any(k => k is not ("full_attention" or "sliding_attention")))
                throw new InvalidDataException($"{source}: layer_types [{string.Join(", ", distinct)}] (mixed or unknown per-layer attention) is not supported");
            if (distinct.Count == 1 && distinct[0] == "sliding_attention")
                window = sw ?? throw new InvalidDataException($"{source}: layer_types asks for sliding_attention but sliding_window is missing");
            else if (distinct.Count == 1) window = null;
        }
        if (root["quantization_config"] is not null)
            throw new InvalidDataException($"{source}: quantization_config (a pre-quantised checkpoint) is not supported; use float32/bfloat16/float16 weights");

        List<int> eos = [];
        switch (root["eos_token_id"])
        {
            case null: break;
            case JsonArray arr:
                foreach (var e in arr) eos.Add(ToInt(e, source, "eos_token_id"));
                break;
            case var v: eos.Add(ToInt(v, source, "eos_token_id")); break;
        }

        string dtype = r.OptionalString("torch_dtype") ?? r.OptionalString("dtype") ?? "float32";
        if (dtype is not ("float32" or "bfloat16" or "float16"))
            throw new InvalidDataException($"{source}: torch_dtype \"{dtype}\" is not supported (float32, bfloat16, float16)");

        // Values that would make the model silently wrong (eps ≤ 0 divides by zero in RMSNorm, theta ≤ 0 gives NaN
        // rotations) or exhaust time and memory before the first byte is written: refuse them naming the key.
        int vocab = r.RequiredInt("vocab_size"), intermediate = r.RequiredInt("intermediate_size");
        double eps = r.OptionalDouble("rms_norm_eps") ?? 1e-6;
        if (!(eps > 0) || !double.IsFinite(eps)) throw new InvalidDataException($"{source}: rms_norm_eps must be a positive number, got {eps}");
        if (!(ropeTheta > 0) || !double.IsFinite(ropeTheta)) throw new InvalidDataException($"{source}: rope_theta must be a positive number, got {ropeTheta}");
        if (vocab <= 0 || intermediate <= 0) throw new InvalidDataException($"{source}: vocab_size and intermediate_size must be positive");
        if (layers > MaxLayers) throw new InvalidDataException($"{source}: num_hidden_layers {layers} is more than the supported {MaxLayers}");
        int maxPositions = r.OptionalInt("max_position_embeddings") ?? 2048;
        if (maxPositions <= 0) throw new InvalidDataException($"{source}: max_position_embeddings must be positive, got {maxPositions}");
        long qRows = (long)heads * hd;
        foreach (var (what, rows, cols) in new[] { ("vocab_size × hidden_size (embed_tokens)", (long)vocab, (long)hidden),
                     ("intermediate_size × hidden_size (mlp)", intermediate, hidden), ("num_attention_heads × head_dim × hidden_size (q_proj)", qRows, hidden) })
            if (rows * cols > Array.MaxLength)
                throw new InvalidDataException($"{source}: {what} = {rows} × {cols} = {rows * cols:N0} elements in one tensor; at most {Array.MaxLength:N0} are supported");

        return new LlamaConfig
        {
            ModelType = modelType,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = intermediate,
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDimOverride = headDim,
            RmsNormEps = eps,
            RopeTheta = ropeTheta,
            RopeScaling = scaling,
            MaxPositionEmbeddings = maxPositions,
            TieWordEmbeddings = r.OptionalBool("tie_word_embeddings") ?? false,
            AttentionBias = attnBias,
            QkvBias = qkvBias,
            MlpBias = r.OptionalBool("mlp_bias") ?? false,
            SlidingWindow = window,
            BosTokenId = r.OptionalInt("bos_token_id"),
            EosTokenIds = eos,
            PadTokenId = r.OptionalInt("pad_token_id"),
            TorchDtype = dtype,
        };
    }

    private static RopeScaling? ParseScaling(JsonObject o, string source, string key)
    {
        var r = new Reader(o, $"{source}: {key}");
        string type = r.OptionalString("rope_type") ?? r.OptionalString("type") ?? "default";
        switch (type)
        {
            case "default": return null;
            case "linear":
                return new RopeScaling("linear", RequiredIn(r, "factor", key));
            case "llama3":
                return new RopeScaling("llama3", RequiredIn(r, "factor", key),
                    r.OptionalDouble("low_freq_factor") ?? 1.0,
                    r.OptionalDouble("high_freq_factor") ?? 4.0,
                    r.OptionalInt("original_max_position_embeddings") ?? 8192);
            default:
                throw new InvalidDataException(
                    $"{source}: {key}.rope_type \"{type}\" is not supported (default, linear, llama3)");
        }
    }

    private static double RequiredIn(Reader r, string name, string key) =>
        r.OptionalDouble(name) ?? throw new InvalidDataException($"{r.Source}: missing required key {key}.{name}");

    private static int ToInt(JsonNode? n, string source, string key)
    {
        try { return n!.GetValue<int>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
        { throw new InvalidDataException($"{source}: {key} must be an integer (or list of integers)"); }
    }

    /// <summary>Writes config.json in Hugging Face form (atomically: temp file, then rename).</summary>
    public void Save(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        Checkpoints.AtomicFile.WriteAllText(path, ToJson());
    }

    /// <summary>
    /// The config.json text Hugging Face transformers reads back to this same config. A config that config.json cannot
    /// carry for its model_type is refused naming the key, never written lossily (the saved model would then attend or
    /// project differently from the one trained): e.g. a sliding window on model_type llama — transformers' LlamaConfig
    /// has no sliding_window (Llama attention is full causal); mistral writes sliding_window, qwen2 use_sliding_window
    /// — or q/k/v-only biases outside qwen2. Checked by reading the text back (<see cref="FromJson"/>) and comparing.
    /// </summary>
    public string ToJson()
    {
        var json = Write();
        var back = FromJson(json, $"the config.json written for model_type {ModelType}");
        var lost = LostOnWrite(back);
        if (lost.Count > 0)
            throw new InvalidDataException(
                $"model_type {ModelType}: config.json cannot hold {string.Join(", ", lost)} (transformers' {ArchitectureOf[ModelType]} config has no such setting), so a saved model would differ from this one; "
                + (lost.Any(l => l.StartsWith("sliding_window")) ? "use model_type mistral or qwen2 for a sliding window, or drop it" : "use a model_type that has it, or drop it"));
        return json;
    }

    // Each setting whose value does not survive write → read, as "config_key=value".
    private List<string> LostOnWrite(LlamaConfig back)
    {
        var lost = new List<string>();
        void Check<T>(string key, T mine, T theirs) { if (!EqualityComparer<T>.Default.Equals(mine, theirs)) lost.Add($"{key}={mine?.ToString() ?? "null"}"); }
        Check("sliding_window", SlidingWindow, back.SlidingWindow);
        Check("q/k/v biases", QkvBias, back.QkvBias);
        Check("attention_bias", AttentionBias, back.AttentionBias);
        Check("mlp_bias", MlpBias, back.MlpBias);
        Check("head_dim", HeadDim, back.HeadDim);
        Check("rope_scaling", RopeScaling, back.RopeScaling);
        Check("rms_norm_eps", RmsNormEps, back.RmsNormEps);
        Check("rope_theta", RopeTheta, back.RopeTheta);
        Check("tie_word_embeddings", TieWordEmbeddings, back.TieWordEmbeddings);
        Check("torch_dtype", TorchDtype, back.TorchDtype);
        if (!EosTokenIds.SequenceEqual(back.EosTokenIds)) lost.Add($"eos_token_id=[{string.Join(", ", EosTokenIds)}]");
        return lost;
    }

    private string Write()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(ArchitectureOf[ModelType]),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["torch_dtype"] = TorchDtype,
        };
        if (HeadDimOverride is int hd) o["head_dim"] = hd;
        if (ModelType == "llama") { o["attention_bias"] = AttentionBias; o["mlp_bias"] = MlpBias; }
        if (ModelType == "mistral") o["sliding_window"] = SlidingWindow;
        if (ModelType == "qwen2")
        {
            o["use_sliding_window"] = SlidingWindow != null;
            o["sliding_window"] = SlidingWindow;
            o["max_window_layers"] = 0;
        }
        if (RopeScaling is { } s)
        {
            var so = new JsonObject { ["rope_type"] = s.Type, ["factor"] = s.Factor };
            if (s.Type == "llama3")
            {
                so["low_freq_factor"] = s.LowFreqFactor;
                so["high_freq_factor"] = s.HighFreqFactor;
                so["original_max_position_embeddings"] = s.OriginalMaxPositionEmbeddings;
            }
            o["rope_scaling"] = so;
        }
        if (BosTokenId is int bos) o["bos_token_id"] = bos;
        if (EosTokenIds.Count == 1) o["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds.Count > 1) o["eos_token_id"] = new JsonArray(EosTokenIds.Select(e => (JsonNode)e).ToArray());
        if (PadTokenId is int pad) o["pad_token_id"] = pad;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Typed access to a JSON object with errors that name the file and key.</summary>
    private readonly struct Reader(JsonObject o, string source)
    {
        public string Source => source;

        public int RequiredInt(string key) =>
            OptionalInt(key) ?? throw new InvalidDataException($"{source}: missing required key \"{key}\"");

        public string RequiredString(string key) =>
            OptionalString(key) ?? throw new InvalidDataException($"{source}: missing required key \"{key}\"");

        public int? OptionalInt(string key) => Get(key, n => n.GetValueKind() == JsonValueKind.Number ? (int?)n.GetValue<int>() : null, "an integer");
        public double? OptionalDouble(string key) => Get(key, n => n.GetValueKind() == JsonValueKind.Number ? (double?)n.GetValue<double>() : null, "a number");
        public string? OptionalString(string key) => Get(key, n => n.GetValueKind() == JsonValueKind.String ? n.GetValue<string>() : null, "a string");
        public bool? OptionalBool(string key) => Get(key, n => n.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? (bool?)n.GetValue<bool>() : null, "true or false");

        private T? Get<T>(string key, Func<JsonNode, T?> read, string what)
        {
            var n = o[key];
            if (n is null) return default;
            T? v;
            try { v = read(n); }
            catch (Exception e) when (e is FormatException or InvalidOperationException or OverflowException) { v = default; }
            return v ?? throw new InvalidDataException($"{source}: key \"{key}\" must be {what}, got {n.ToJsonString()}");
        }
    }
}
