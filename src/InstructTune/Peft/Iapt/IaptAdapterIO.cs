// IAPT adapters on disk (an InstructTune layout; PEFT has no instruction-aware prompt type), PEFT-like names:
//   adapter_config.json        {"peft_type": "IAPT", "task_type": "CAUSAL_LM", "base_model_name_or_path",
//                               "num_virtual_tokens", "bottleneck", "activation", "num_layers", "hidden_size",
//                               "num_attention_heads", "num_key_value_heads", "head_dim",
//                               "instruction_representation": "mean_instruction_embeddings"}
//   adapter_model.safetensors  base_model.model.iapt_generator.down_<l>.weight [m, hidden], ….down_<l>.bias [m],
//                               ….up_<l>.weight [P·2·kv·hd, m], ….up_<l>.bias [P·2·kv·hd], ….gate_<l> [heads·hd].
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Checkpoints;
using InstructTune.Models;

namespace InstructTune.Peft.Iapt;

public sealed class IaptAdapterFile
{
    public const string PeftType = "IAPT";
    public const string Prefix = "base_model.model." + IaptInjector.ModuleName + ".";

    public IaptConfig Config { get; }
    public int Layers { get; }
    public int Hidden { get; }
    public int Heads { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }
    /// <summary>Generator parameters by their name inside the generator (down_0.weight, gate_1, …).</summary>
    public IReadOnlyDictionary<string, float[]> Tensors { get; }

    private IaptAdapterFile(IaptConfig c, int layers, int hidden, int heads, int kvHeads, int headDim, Dictionary<string, float[]> t)
    { Config = c; Layers = layers; Hidden = hidden; Heads = heads; KvHeads = kvHeads; HeadDim = headDim; Tensors = t; }

    /// <summary>Every tensor of a generator with these sizes: name → shape.</summary>
    public static IEnumerable<(string Name, long[] Shape)> Shapes(IaptConfig c, int layers, int hidden, int heads, int kvHeads, int headDim)
    {
        int m = c.Bottleneck, z = c.NumVirtualTokens * 2 * kvHeads * headDim;
        for (int l = 0; l < layers; l++)
        {
            yield return ($"down_{l}.weight", [m, hidden]);
            yield return ($"down_{l}.bias", [m]);
            yield return ($"up_{l}.weight", [z, m]);
            yield return ($"up_{l}.bias", [z]);
            yield return ($"gate_{l}", [heads * headDim]);
        }
    }

    public static IaptAdapterFile Load(string dir)
    {
        var (cfgPath, weightsPath) = AdapterFolder.Files(dir);
        var root = AdapterFolder.ReadConfig(cfgPath);
        if (!root.TryGetProperty("peft_type", out var pt) || pt.GetString() != PeftType) throw new InvalidDataException($"{cfgPath}: peft_type is not {PeftType}");
        int Int(string key) => root.TryGetProperty(key, out var v) && v.TryGetInt32(out var i) && i > 0 ? i
            : throw new InvalidDataException($"{cfgPath}: missing or invalid key \"{key}\"");
        string act = root.TryGetProperty("activation", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString()! : "";
        if (!IaptConfig.Activations.Contains(act))
            throw new InvalidDataException($"{cfgPath}: \"activation\" \"{act}\" is not one of {string.Join(", ", IaptConfig.Activations)}");
        var config = new IaptConfig { NumVirtualTokens = Int("num_virtual_tokens"), Bottleneck = Int("bottleneck"), Activation = act };
        int layers = Int("num_layers"), hidden = Int("hidden_size"), heads = Int("num_attention_heads"), kv = Int("num_key_value_heads"), hd = Int("head_dim");
        using var f = SafetensorsFile.Open(weightsPath);
        var tensors = new Dictionary<string, float[]>();
        foreach (var (name, shape) in Shapes(config, layers, hidden, heads, kv, hd))
        {
            string full = Prefix + name;
            if (!f.Contains(full)) throw new InvalidDataException($"{weightsPath}: tensor \"{full}\" is missing");
            var s = f.Info(full).Shape;
            if (!s.SequenceEqual(shape)) throw new InvalidDataException($"{weightsPath}: \"{full}\" has shape [{string.Join(",", s)}], expected [{string.Join(",", shape)}]");
            tensors[name] = f.ReadF32(full);
        }
        return new IaptAdapterFile(config, layers, hidden, heads, kv, hd, tensors);
    }

    /// <summary>Refuses a model whose layers, widths or heads differ from the file's, naming both.</summary>
    public void CheckFits(LlamaConfig c, string where)
    {
        if (c.NumHiddenLayers != Layers || c.HiddenSize != Hidden || c.NumAttentionHeads != Heads || c.NumKeyValueHeads != KvHeads || c.HeadDim != HeadDim)
            throw new InvalidDataException($"{where}: IAPT adapter is for {Layers} layers, hidden {Hidden}, {Heads} heads ({KvHeads} kv) of {HeadDim}; "
                + $"the model has {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads ({c.NumKeyValueHeads} kv) of {c.HeadDim}");
    }
}

public static class IaptAdapterIO
{
    public static void Save(LlamaModel model, IaptConfig config, string dir, string baseModelPath = "")
    {
        if (model.Conditioner is not IaptGenerator gen) throw new InvalidOperationException("the model has no IAPT generator to save");
        var c = model.Config;
        Directory.CreateDirectory(dir);
        var tensors = IaptAdapterFile.Shapes(config, c.NumHiddenLayers, c.HiddenSize, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim)
            .Select(x => TensorToWrite.FromF32(IaptAdapterFile.Prefix + x.Name, DType.F32, x.Shape, gen.GetParameter(x.Name).ToArray())).ToList();
        SafetensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), tensors);
        var json = new JsonObject
        {
            ["peft_type"] = IaptAdapterFile.PeftType,
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModelPath,
            ["num_virtual_tokens"] = config.NumVirtualTokens,
            ["bottleneck"] = config.Bottleneck,
            ["activation"] = config.Activation,
            ["num_layers"] = c.NumHiddenLayers,
            ["hidden_size"] = c.HiddenSize,
            ["num_attention_heads"] = c.NumAttentionHeads,
            ["num_key_value_heads"] = c.NumKeyValueHeads,
            ["head_dim"] = c.HeadDim,
            ["instruction_representation"] = "mean_instruction_embeddings",
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "adapter_config.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Injects a generator of the file's sizes and loads every value; refuses a model that does not fit.</summary>
    public static void LoadInto(LlamaModel model, string dir)
    {
        var file = IaptAdapterFile.Load(dir);
        file.CheckFits(model.Config, dir);
        var gen = IaptInjector.Inject(model, file.Config, 0);
        foreach (var (name, values) in file.Tensors) gen.GetParameter(name).Load(values);
    }
}
