using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Checkpoints;
using InstructTune.Engine.Modules;

namespace InstructTune.Peft.Lora;

/// <summary>
/// Saves and loads the trainable part of a LoRA model in the Hugging Face PEFT layout:
/// `adapter_config.json` and `adapter_model.safetensors` with keys
/// `base_model.model.&lt;module&gt;.lora_A.weight` [r, in] and `.lora_B.weight` [out, r] (PEFT drops the
/// adapter name "default" when saving), plus `.lora_magnitude_vector` [out] per module for DoRA. Both files are
/// written atomically.
/// </summary>
public static class LoraAdapterIO
{
    public const string Prefix = "base_model.model.";

    public static void Save(Module model, LoraConfig config, string dir, string baseModelPath = "")
    {
        Directory.CreateDirectory(dir);
        var layers = LoraInjector.Find(model);
        if (layers.Count == 0) throw new InvalidOperationException("the model has no LoRA layers to save");
        var tensors = new List<TensorToWrite>();
        foreach (var (name, layer) in layers)
        {
            tensors.Add(TensorToWrite.FromF32($"{Prefix}{name}.lora_A.weight", DType.F32, [layer.Rank, layer.InFeatures], layer.A.Weight.ToArray()));
            tensors.Add(TensorToWrite.FromF32($"{Prefix}{name}.lora_B.weight", DType.F32, [layer.OutFeatures, layer.Rank], layer.B.Weight.ToArray()));
            if (layer.Magnitude != null)
                tensors.Add(TensorToWrite.FromF32($"{Prefix}{name}{LoraAdapterFile.MagnitudeSuffix}", DType.F32, [layer.OutFeatures], layer.Magnitude.ToArray()));
        }
        SafetensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), tensors);

        WriteConfig(dir, config, layers.Select(l => l.Name), baseModelPath);
    }

    /// <summary>adapter_config.json for LoRA layers at <paramref name="layerNames"/> (also progressive columns exported as LoRA).</summary>
    public static void WriteConfig(string dir, LoraConfig config, IEnumerable<string> layerNames, string baseModelPath)
    {
        // Target modules as PEFT records them: the distinct last name components that were adapted.
        var targetNames = layerNames.Select(n => n[(n.LastIndexOf('.') + 1)..]).Distinct().Order().ToArray();
        var json = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModelPath,
            ["r"] = config.Rank,
            ["lora_alpha"] = config.Alpha,
            ["lora_dropout"] = config.Dropout,
            ["target_modules"] = new JsonArray(targetNames.Select(t => (JsonNode)t).ToArray()),
            ["use_rslora"] = config.UseRsLora,
            ["use_dora"] = config.UseDora,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["init_lora_weights"] = true,
            ["inference_mode"] = true,
            ["modules_to_save"] = null,
            ["layers_to_transform"] = null,
            ["rank_pattern"] = new JsonObject(),
            ["alpha_pattern"] = new JsonObject(),
            ["revision"] = null,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "adapter_config.json"),
            json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// Injects LoRA layers as the adapter describes and loads its A/B weights. Refuses an adapter that does not
    /// fit the model, naming the module and the shapes.
    /// </summary>
    public static LoraConfig LoadInto(Module model, string dir, ulong seed = 0, bool quantizeBase = false)
    {
        var file = LoraAdapterFile.Load(dir);
        var config = new LoraConfig
        {
            Rank = file.Rank, Alpha = file.Alpha, UseRsLora = file.UseRsLora, UseDora = file.UseDora,
            TargetModules = file.Deltas.Keys.Select(k => "re:" + System.Text.RegularExpressions.Regex.Escape(k)).ToList(),
        };
        foreach (var (module, delta) in file.Deltas)
        {
            Module m;
            try { m = model.GetModule(module); }
            catch (Exception e) when (e is ArgumentException or KeyNotFoundException)
            {
                throw new InvalidDataException($"{dir}: adapter module '{module}' does not exist in the model");
            }
            if (m is not Linear linear)
                throw new InvalidDataException($"{dir}: adapter module '{module}' is a {m.GetType().Name}, not a Linear");
            if (linear.InFeatures != delta.In || linear.OutFeatures != delta.Out)
                throw new InvalidDataException(
                    $"{dir}: adapter module '{module}' has A [{delta.Rank}, {delta.In}] and B [{delta.Out}, {delta.Rank}] " +
                    $"but the model's layer is [{linear.OutFeatures}, {linear.InFeatures}] (out, in)");
        }
        var layers = LoraInjector.Inject(model, config, seed, quantizeBase);
        foreach (var (name, layer) in layers)
        {
            var delta = file.Deltas[name];
            layer.A.Weight.Load(delta.A);
            layer.B.Weight.Load(delta.B);
            if (delta.Magnitude != null) layer.Magnitude!.Load(delta.Magnitude);
        }
        return config;
    }
}
