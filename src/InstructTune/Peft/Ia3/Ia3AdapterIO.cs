// IA3 adapters in the Hugging Face PEFT layout: adapter_config.json (peft_type "IA3", target_modules,
// feedforward_modules) and adapter_model.safetensors with base_model.model.<module>.ia3_l, shaped [out, 1] for an
// output vector and [1, in] for a feedforward (input) vector, as PEFT's IA3Layer holds them.
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Checkpoints;
using InstructTune.Engine.Modules;

namespace InstructTune.Peft.Ia3;

/// <summary>One IA3 vector: on the input (Feedforward, length in) or on the output (length out).</summary>
public sealed record Ia3Vector(float[] L, bool Feedforward);

public sealed class Ia3AdapterFile
{
    public Ia3Config Config { get; }
    /// <summary>Module name (e.g. "model.layers.0.self_attn.k_proj") → its vector.</summary>
    public IReadOnlyDictionary<string, Ia3Vector> Vectors { get; }

    private Ia3AdapterFile(Ia3Config config, Dictionary<string, Ia3Vector> vectors) { Config = config; Vectors = vectors; }

    public const string Prefix = "base_model.model.";
    public const string Suffix = ".ia3_l";

    public static Ia3AdapterFile Load(string dir)
    {
        var (cfgPath, weightsPath) = AdapterFolder.Files(dir);
        var root = AdapterFolder.ReadConfig(cfgPath);
        if (root.TryGetProperty("peft_type", out var pt) && pt.GetString() != "IA3")
            throw new InvalidDataException($"{cfgPath}: peft_type \"{pt.GetString()}\" is not IA3");
        if (root.TryGetProperty("fan_in_fan_out", out var fifo) && fifo.ValueKind == JsonValueKind.True)
            throw new InvalidDataException($"{cfgPath}: fan_in_fan_out=true is not supported");
        var config = new Ia3Config { TargetModules = Names(root, "target_modules"), FeedforwardModules = Names(root, "feedforward_modules") };

        var vectors = new Dictionary<string, Ia3Vector>();
        using var f = SafetensorsFile.Open(weightsPath);
        foreach (var name in f.Tensors.Keys)
        {
            if (!name.StartsWith(Prefix) || !name.EndsWith(Suffix))
                throw new InvalidDataException($"{weightsPath}: tensor \"{name}\" is not an IA3 vector (base_model.model.<module>.ia3_l)");
            string module = name[Prefix.Length..^Suffix.Length];
            var shape = f.Info(name).Shape;
            bool ff = config.IsFeedforward(module);
            if (shape.Length != 2 || (ff ? shape[0] != 1 : shape[1] != 1))
                throw new InvalidDataException($"{weightsPath}: \"{name}\" has shape [{string.Join(",", shape)}]; a {(ff ? "feedforward" : "non-feedforward")} module's ia3_l is {(ff ? "[1, in]" : "[out, 1]")}");
            vectors[module] = new Ia3Vector(f.ReadF32(name), ff);
        }
        if (vectors.Count == 0) throw new InvalidDataException($"{weightsPath}: no ia3_l vectors found");
        return new Ia3AdapterFile(config, vectors);
    }

    private static List<string> Names(JsonElement root, string key) =>
        !root.TryGetProperty(key, out var e) || e.ValueKind == JsonValueKind.Null ? []
        : e.ValueKind == JsonValueKind.String ? [e.GetString()!]
        : e.EnumerateArray().Select(x => x.GetString() ?? "").ToList();
}

public static class Ia3AdapterIO
{
    public static void Save(Module model, Ia3Config config, string dir, string baseModelPath = "")
    {
        Directory.CreateDirectory(dir);
        var layers = Ia3Injector.Find(model);
        if (layers.Count == 0) throw new InvalidOperationException("the model has no IA3 layers to save");
        var tensors = layers.Select(l => TensorToWrite.FromF32(Ia3AdapterFile.Prefix + l.Name + Ia3AdapterFile.Suffix, DType.F32,
            l.Layer.IsFeedforward ? [1, l.Layer.InFeatures] : [l.Layer.OutFeatures, 1], l.Layer.L.ToArray())).ToList();
        SafetensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), tensors);
        string Last(string n) => n[(n.LastIndexOf('.') + 1)..];
        var json = new JsonObject
        {
            ["peft_type"] = "IA3",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModelPath,
            ["target_modules"] = new JsonArray(layers.Select(l => Last(l.Name)).Distinct().Order().Select(t => (JsonNode)t!).ToArray()),
            ["feedforward_modules"] = new JsonArray(layers.Where(l => l.Layer.IsFeedforward).Select(l => Last(l.Name)).Distinct().Order().Select(t => (JsonNode)t!).ToArray()),
            ["fan_in_fan_out"] = false,
            ["init_ia3_weights"] = true,
            ["inference_mode"] = true,
            ["modules_to_save"] = null,
            ["revision"] = null,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "adapter_config.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Injects IA3 layers where the adapter has vectors and loads them; refuses a module that is missing or
    /// whose size does not fit, naming it.</summary>
    public static Ia3Config LoadInto(Module model, string dir)
    {
        var file = Ia3AdapterFile.Load(dir);
        foreach (var (module, v) in file.Vectors)
        {
            Module m;
            try { m = model.GetModule(module); }
            catch (Exception e) when (e is ArgumentException or KeyNotFoundException)
            {
                throw new InvalidDataException($"{dir}: adapter module '{module}' does not exist in the model");
            }
            if (m is not Linear linear) throw new InvalidDataException($"{dir}: adapter module '{module}' is a {m.GetType().Name}, not a Linear");
            int want = v.Feedforward ? linear.InFeatures : linear.OutFeatures;
            if (v.L.Length != want)
                throw new InvalidDataException($"{dir}: ia3_l of '{module}' has {v.L.Length} entries; the layer's {(v.Feedforward ? "input" : "output")} has {want}");
        }
        var esc = file.Vectors.Keys.Select(k => "re:" + System.Text.RegularExpressions.Regex.Escape(k)).ToList();
        var config = new Ia3Config
        {
            TargetModules = esc,
            FeedforwardModules = file.Vectors.Where(v => v.Value.Feedforward).Select(v => "re:" + System.Text.RegularExpressions.Regex.Escape(v.Key)).ToList(),
        };
        foreach (var (name, layer) in Ia3Injector.Inject(model, config)) layer.L.Load(file.Vectors[name].L);
        return file.Config;
    }
}
