// iPEFT adapters on disk (an InstructTune layout; PEFT has no instruction-gated type), PEFT-like names:
//   adapter_config.json        {"peft_type": "IPEFT", "task_type": "CAUSAL_LM", "base_model_name_or_path", "r",
//                               "lora_alpha", "target_modules", "adapter_type": "lora", "num_layers", "hidden_size",
//                               "instruction_representation": "causal_mean_instruction_embeddings"}
//   adapter_model.safetensors  base_model.model.<module>.ipeft_A.weight [r, in], ….ipeft_B.weight [out, r],
//                               base_model.model.ipeft_gate.weight_<l> [1, hidden], base_model.model.ipeft_gate.bias_<l> [1].
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Checkpoints;
using InstructTune.Models;

namespace InstructTune.Peft.Ipeft;

/// <summary>One gated adapter: its decoder layer, A (r, in), B (out, r).</summary>
public sealed record IpeftDelta(int Layer, int Rank, int In, int Out, float[] A, float[] B);

public sealed class IpeftAdapterFile
{
    public const string PeftType = "IPEFT";
    public const string Prefix = "base_model.model.";

    public IpeftConfig Config { get; }
    public IReadOnlyDictionary<string, IpeftDelta> Deltas { get; }
    /// <summary>Gate head: W (layers, hidden) row-major, b (layers).</summary>
    public float[] GateW { get; }
    public float[] GateB { get; }
    public int Layers { get; }
    public int Hidden { get; }

    private IpeftAdapterFile(IpeftConfig c, Dictionary<string, IpeftDelta> d, float[] w, float[] b, int layers, int hidden)
    { Config = c; Deltas = d; GateW = w; GateB = b; Layers = layers; Hidden = hidden; }

    public static IpeftAdapterFile Load(string dir)
    {
        var (cfgPath, weightsPath) = AdapterFolder.Files(dir);
        var root = AdapterFolder.ReadConfig(cfgPath);
        if (!root.TryGetProperty("peft_type", out var pt) || pt.GetString() != PeftType) throw new InvalidDataException($"{cfgPath}: peft_type is not {PeftType}");
        int Int(string key) => root.TryGetProperty(key, out var v) && v.TryGetInt32(out var i) && i > 0 ? i
            : throw new InvalidDataException($"{cfgPath}: missing or invalid key \"{key}\"");
        int r = Int("r"), layers = Int("num_layers"), hidden = Int("hidden_size");
        double alpha = root.TryGetProperty("lora_alpha", out var a) && a.TryGetDouble(out var av) && av > 0 ? av
            : throw new InvalidDataException($"{cfgPath}: missing or invalid key \"lora_alpha\"");
        var config = new IpeftConfig
        {
            Rank = r, Alpha = alpha,
            TargetModules = root.TryGetProperty("target_modules", out var tm) ? tm.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : [],
        };
        using var f = SafetensorsFile.Open(weightsPath);
        float[] Read(string name, long[] shape)
        {
            if (!f.Contains(name)) throw new InvalidDataException($"{weightsPath}: tensor \"{name}\" is missing");
            var s = f.Info(name).Shape;
            if (!s.SequenceEqual(shape)) throw new InvalidDataException($"{weightsPath}: \"{name}\" has shape [{string.Join(",", s)}], expected [{string.Join(",", shape)}]");
            return f.ReadF32(name);
        }
        var w = new float[layers * hidden]; var b = new float[layers];
        for (int l = 0; l < layers; l++)
        {
            Read($"{Prefix}{IpeftInjector.GateName}.weight_{l}", [1, hidden]).CopyTo(w, l * hidden);
            b[l] = Read($"{Prefix}{IpeftInjector.GateName}.bias_{l}", [1])[0];
        }
        var deltas = new Dictionary<string, IpeftDelta>();
        foreach (var name in f.Tensors.Keys.Where(k => k.EndsWith(".ipeft_A.weight")))
        {
            string module = name[Prefix.Length..^".ipeft_A.weight".Length];
            int layer = IpeftInjector.LayerOf(module);
            if (layer < 0 || layer >= layers) throw new InvalidDataException($"{weightsPath}: \"{name}\" is not in decoder layers 0..{layers - 1}");
            var sa = f.Info(name).Shape;
            if (sa.Length != 2 || sa[0] != r) throw new InvalidDataException($"{weightsPath}: \"{name}\" has shape [{string.Join(",", sa)}]; expected [r={r}, in]");
            string bName = Prefix + module + ".ipeft_B.weight";
            if (!f.Contains(bName)) throw new InvalidDataException($"{weightsPath}: \"{bName}\" is missing");
            var sb = f.Info(bName).Shape;
            if (sb.Length != 2 || sb[1] != r) throw new InvalidDataException($"{weightsPath}: \"{bName}\" has shape [{string.Join(",", sb)}]; expected [out, r={r}]");
            deltas[module] = new IpeftDelta(layer, r, (int)sa[1], (int)sb[0], f.ReadF32(name), f.ReadF32(bName));
        }
        if (deltas.Count == 0) throw new InvalidDataException($"{weightsPath}: no ipeft_A/ipeft_B adapters found");
        return new IpeftAdapterFile(config, deltas, w, b, layers, hidden);
    }
}

public static class IpeftAdapterIO
{
    public static void Save(LlamaModel model, IpeftConfig config, string dir, string baseModelPath = "")
    {
        var layers = IpeftInjector.Find(model);
        if (layers.Count == 0 || model.Conditioner is not IpeftGate gate) throw new InvalidOperationException("the model has no iPEFT adapters to save");
        Directory.CreateDirectory(dir);
        var tensors = new List<TensorToWrite>();
        for (int l = 0; l < gate.Layers; l++)
        {
            tensors.Add(TensorToWrite.FromF32($"{IpeftAdapterFile.Prefix}{IpeftInjector.GateName}.weight_{l}", DType.F32, [1, model.Config.HiddenSize], gate.Weight(l).ToArray()));
            tensors.Add(TensorToWrite.FromF32($"{IpeftAdapterFile.Prefix}{IpeftInjector.GateName}.bias_{l}", DType.F32, [1], gate.Bias(l).ToArray()));
        }
        foreach (var (name, x) in layers)
        {
            tensors.Add(TensorToWrite.FromF32($"{IpeftAdapterFile.Prefix}{name}.ipeft_A.weight", DType.F32, [config.Rank, x.Base.InFeatures], x.A.Weight.ToArray()));
            tensors.Add(TensorToWrite.FromF32($"{IpeftAdapterFile.Prefix}{name}.ipeft_B.weight", DType.F32, [x.Base.OutFeatures, config.Rank], x.B.Weight.ToArray()));
        }
        SafetensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), tensors);
        string Last(string n) => n[(n.LastIndexOf('.') + 1)..];
        var json = new JsonObject
        {
            ["peft_type"] = IpeftAdapterFile.PeftType,
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModelPath,
            ["r"] = config.Rank,
            ["lora_alpha"] = config.Alpha,
            ["target_modules"] = new JsonArray(layers.Select(l => Last(l.Name)).Distinct().Order().Select(t => (JsonNode)t!).ToArray()),
            ["adapter_type"] = "lora",
            ["num_layers"] = gate.Layers,
            ["hidden_size"] = model.Config.HiddenSize,
            ["instruction_representation"] = "causal_mean_instruction_embeddings",
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "adapter_config.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Injects iPEFT where the file has adapters and loads every value; refuses modules or sizes that do not fit.</summary>
    public static void LoadInto(LlamaModel model, string dir)
    {
        var file = IpeftAdapterFile.Load(dir);
        if (file.Layers != model.Config.NumHiddenLayers || file.Hidden != model.Config.HiddenSize)
            throw new InvalidDataException($"{dir}: iPEFT adapter is for {file.Layers} layers of width {file.Hidden}; the model has {model.Config.NumHiddenLayers} of width {model.Config.HiddenSize}");
        foreach (var (module, d) in file.Deltas)
        {
            Engine.Modules.Module m;
            try { m = model.GetModule(module); }
            catch (Exception e) when (e is ArgumentException or KeyNotFoundException) { throw new InvalidDataException($"{dir}: adapter module '{module}' does not exist in the model"); }
            if (m is not Engine.Modules.Linear lin || lin.InFeatures != d.In || lin.OutFeatures != d.Out)
                throw new InvalidDataException($"{dir}: adapter for '{module}' is [{d.Out}×{d.In}]; the model's module does not fit");
        }
        var config = file.Config with { TargetModules = file.Deltas.Keys.Select(k => "re:" + System.Text.RegularExpressions.Regex.Escape(k)).ToList() };
        foreach (var (name, layer) in IpeftInjector.Inject(model, config, 0))
        {
            layer.A.Weight.Load(file.Deltas[name].A);
            layer.B.Weight.Load(file.Deltas[name].B);
        }
        var gate = (IpeftGate)model.Conditioner!;
        for (int l = 0; l < file.Layers; l++)
        {
            gate.Weight(l).Load(file.GateW.AsSpan(l * file.Hidden, file.Hidden));
            gate.Bias(l).Load(file.GateB.AsSpan(l, 1));
        }
    }
}
