// A HINT adapter folder read for inference (the layout HintInjector.Save writes; see its header): the settings, the
// hypernetwork's tensors by their name inside it, and each target projection's low-rank pair (hint_A, hint_B).
using InstructTune.Checkpoints;
using InstructTune.Models;

namespace InstructTune.Peft.Hint;

public sealed class HintAdapterFile
{
    public const string Prefix = "base_model.model.";
    public const string HyperPrefix = Prefix + HintInjector.ModuleName + ".";
    /// <summary>adapter_config.json "adapter_form": the generated part is an r×r matrix per layer (ΔW = (α/r)·B·M_l(e)·A).</summary>
    public const string AdapterForm = "generated_low_rank";

    public HintConfig Config { get; }
    public int Layers { get; }
    public int Hidden { get; }
    public int Heads { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    /// <summary>Hypernetwork parameters by their name inside it (adapter_w_0, prompt_down_1.bias, prompt_gate_0, …).</summary>
    public IReadOnlyDictionary<string, float[]> Tensors { get; }
    /// <summary>Per target projection (model.layers.N.self_attn.q_proj, …): A (r, in) and B (out, r).</summary>
    public IReadOnlyDictionary<string, (float[] A, float[] B, int In, int Out)> Adapters { get; }

    private HintAdapterFile(HintConfig c, int layers, int hidden, int heads, int kv, int hd,
        Dictionary<string, float[]> t, Dictionary<string, (float[], float[], int, int)> a)
    { Config = c; Layers = layers; Hidden = hidden; Heads = heads; KvHeads = kv; HeadDim = hd; Tensors = t; Adapters = a; }

    /// <summary>Every hypernetwork tensor for these sizes: name → shape.</summary>
    public static IEnumerable<(string Name, long[] Shape)> Shapes(HintConfig c, int layers, int hidden, int heads, int kvHeads, int headDim)
    {
        int m = c.Bottleneck, z = c.NumVirtualTokens * 2 * kvHeads * headDim;
        for (int l = 0; l < layers; l++)
        {
            yield return ($"adapter_w_{l}", [c.Rank * c.Rank, hidden]);
            yield return ($"adapter_b_{l}", [c.Rank * c.Rank]);
            yield return ($"prompt_down_{l}.weight", [m, hidden]);
            yield return ($"prompt_down_{l}.bias", [m]);
            yield return ($"prompt_up_{l}.weight", [z, m]);
            yield return ($"prompt_up_{l}.bias", [z]);
            yield return ($"prompt_gate_{l}", [heads * headDim]);
        }
    }

    /// <summary>adapter_config.json's settings and the model sizes it was trained for; a missing key is named.</summary>
    public static (HintConfig Config, int Layers, int Hidden, int Heads, int KvHeads, int HeadDim) ReadConfig(string cfgPath)
    {
        var root = AdapterFolder.ReadConfig(cfgPath);
        if (!root.TryGetProperty("peft_type", out var pt) || pt.GetString() != HintInjector.PeftType)
            throw new InvalidDataException($"{cfgPath}: peft_type is not {HintInjector.PeftType}");
        int Int(string key) => root.TryGetProperty(key, out var v) && v.TryGetInt32(out var i) && i > 0 ? i
            : throw new InvalidDataException($"{cfgPath}: missing or invalid key \"{key}\"");
        if (!root.TryGetProperty("adapter_form", out var form) || form.ValueKind != System.Text.Json.JsonValueKind.String || form.GetString() != AdapterForm)
            throw new InvalidDataException($"{cfgPath}: \"adapter_form\" is not \"{AdapterForm}\": this HINT adapter was written by an earlier "
                + "InstructTune whose hypernetwork generated one scale per layer (adapter_gate_w_<l>); retrain it (training.method: hint)");
        double alpha = root.TryGetProperty("lora_alpha", out var a) && a.TryGetDouble(out var av) && av > 0 ? av
            : throw new InvalidDataException($"{cfgPath}: missing or invalid key \"lora_alpha\"");
        var targets = root.TryGetProperty("target_modules", out var tm) && tm.ValueKind == System.Text.Json.JsonValueKind.Array
            ? tm.EnumerateArray().Select(x => x.GetString() ?? "").ToList()
            : throw new InvalidDataException($"{cfgPath}: missing or invalid key \"target_modules\"");
        var config = new HintConfig
        {
            EncoderLayers = Int("encoder_layers"), Rank = Int("r"), Alpha = alpha, TargetModules = targets,
            NumVirtualTokens = Int("num_virtual_tokens"), Bottleneck = Int("bottleneck"),
        };
        return (config, Int("num_layers"), Int("hidden_size"), Int("num_attention_heads"), Int("num_key_value_heads"), Int("head_dim"));
    }

    public static HintAdapterFile Load(string dir)
    {
        var (cfgPath, weightsPath) = AdapterFolder.Files(dir);
        var (config, layers, hidden, heads, kv, hd) = ReadConfig(cfgPath);
        if (config.EncoderLayers > layers)
            throw new InvalidDataException($"{cfgPath}: encoder_layers {config.EncoderLayers} is beyond num_layers {layers}");
        using var f = SafetensorsFile.Open(weightsPath);
        float[] Read(string full, long[] shape)
        {
            if (!f.Contains(full)) throw new InvalidDataException($"{weightsPath}: tensor \"{full}\" is missing");
            var s = f.Info(full).Shape;
            if (!s.SequenceEqual(shape)) throw new InvalidDataException($"{weightsPath}: \"{full}\" has shape [{string.Join(",", s)}], expected [{string.Join(",", shape)}]");
            return f.ReadF32(full);
        }
        var tensors = new Dictionary<string, float[]>();
        foreach (var (name, shape) in Shapes(config, layers, hidden, heads, kv, hd)) tensors[name] = Read(HyperPrefix + name, shape);
        var adapters = new Dictionary<string, (float[], float[], int, int)>();
        const string SuffixA = ".hint_A.weight";
        foreach (var full in f.Tensors.Keys.Where(k => k.StartsWith(Prefix) && k.EndsWith(SuffixA)).Order())
        {
            string module = full[Prefix.Length..^SuffixA.Length];
            var sa = f.Info(full).Shape;
            string fullB = Prefix + module + ".hint_B.weight";
            if (!f.Contains(fullB)) throw new InvalidDataException($"{weightsPath}: tensor \"{fullB}\" is missing");
            var sb = f.Info(fullB).Shape;
            if (sa.Length != 2 || sa[0] != config.Rank || sb.Length != 2 || sb[1] != config.Rank)
                throw new InvalidDataException($"{weightsPath}: \"{module}\" hint_A [{string.Join(",", sa)}] and hint_B [{string.Join(",", sb)}] do not have rank r={config.Rank}");
            adapters[module] = (f.ReadF32(full), f.ReadF32(fullB), (int)sa[1], (int)sb[0]);
        }
        if (adapters.Count == 0) throw new InvalidDataException($"{weightsPath}: no \"….hint_A.weight\" tensor: the file holds no HINT adapter");
        return new HintAdapterFile(config, layers, hidden, heads, kv, hd, tensors, adapters);
    }

    /// <summary>Refuses a model whose layers, widths or heads differ from the file's, naming both.</summary>
    public void CheckFits(LlamaConfig c, string where)
    {
        if (c.NumHiddenLayers != Layers || c.HiddenSize != Hidden || c.NumAttentionHeads != Heads || c.NumKeyValueHeads != KvHeads || c.HeadDim != HeadDim)
            throw new InvalidDataException($"{where}: HINT adapter is for {Layers} layers, hidden {Hidden}, {Heads} heads ({KvHeads} kv) of {HeadDim}; "
                + $"the model has {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads ({c.NumKeyValueHeads} kv) of {c.HeadDim}");
    }
}
