// HINT's injector and adapter files (an InstructTune layout; PEFT has no hypernetwork type), PEFT-like names:
//   adapter_config.json        {"peft_type": "HINT", "task_type": "CAUSAL_LM", "base_model_name_or_path", "encoder_layers",
//                               "adapter_form": "generated_low_rank" (ΔW = (α/r)·B·M_l(e)·A, M_l(e) = reshape(W_l·e + b_l)),
//                               "r", "lora_alpha", "target_modules", "num_virtual_tokens", "bottleneck", "num_layers",
//                               "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim"}
//   adapter_model.safetensors  base_model.model.hint_hypernetwork.{adapter_w_<l> [r·r, hidden], adapter_b_<l> [r·r],
//                               prompt_down_<l>.{weight [m, hidden], bias [m]}, prompt_up_<l>.{weight [P·2·kv·hd, m], bias},
//                               prompt_gate_<l> [heads·hd]}, base_model.model.<module>.hint_A.weight [r, in], ….hint_B.weight [out, r].
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Checkpoints;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Models;

namespace InstructTune.Peft.Hint;

public static class HintInjector
{
    public const string ModuleName = "hint_hypernetwork";
    public const string PeftType = "HINT";
    private const string Prefix = "base_model.model.";

    public static HintHypernetwork Inject(LlamaModel model, HintConfig config, ulong seed)
    {
        var rng = new Rng(seed ^ 0x41A7UL);
        var hyper = new HintHypernetwork(model.Config, config, rng);
        foreach (var (_, p) in model.NamedParameters()) p.Frozen = true;
        var targets = model.NamedModules().Where(m => m.Module is Linear && config.Targets(m.Name)).Select(m => m.Name).ToList();
        if (targets.Count == 0) throw new ArgumentException($"target_modules [{string.Join(", ", config.TargetModules)}] match no Linear layer of the model");
        foreach (var t in targets)
            if (Ipeft.IpeftInjector.LayerOf(t) < 0) throw new ArgumentException($"'{t}' is not a projection of a decoder layer; HINT's adapters are per decoder layer");
        model.AttachConditioner(ModuleName, hyper);
        foreach (var name in targets) model.ReplaceModule(name, old => new HintLinear((Linear)old, hyper, Ipeft.IpeftInjector.LayerOf(name), rng));
        return hyper;
    }

    public static void Save(LlamaModel model, string dir, string baseModelPath = "")
    {
        if (model.Conditioner is not HintHypernetwork hyper) throw new InvalidOperationException("the model has no HINT hypernetwork to save");
        var c = model.Config; var h = hyper.Config;
        Directory.CreateDirectory(dir);
        var tensors = model.NamedParameters().Where(p => !p.Parameter.Frozen)
            .Select(p => TensorToWrite.FromF32(Prefix + p.Name, DType.F32, p.Parameter.Shape.Select(x => (long)x).ToArray(), p.Parameter.ToArray())).ToList();
        SafetensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), tensors);
        var targets = model.NamedModules().Where(m => m.Module is HintLinear).Select(m => m.Name[(m.Name.LastIndexOf('.') + 1)..]).Distinct().Order();
        var json = new JsonObject
        {
            ["peft_type"] = PeftType, ["task_type"] = "CAUSAL_LM", ["base_model_name_or_path"] = baseModelPath,
            ["encoder_layers"] = h.EncoderLayers, ["adapter_form"] = HintAdapterFile.AdapterForm, ["r"] = h.Rank, ["lora_alpha"] = h.Alpha,
            ["target_modules"] = new JsonArray(targets.Select(t => (JsonNode)t!).ToArray()),
            ["num_virtual_tokens"] = h.NumVirtualTokens, ["bottleneck"] = h.Bottleneck,
            ["num_layers"] = c.NumHiddenLayers, ["hidden_size"] = c.HiddenSize, ["num_attention_heads"] = c.NumAttentionHeads,
            ["num_key_value_heads"] = c.NumKeyValueHeads, ["head_dim"] = c.HeadDim,
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "adapter_config.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Injects HINT as the file describes and loads every tensor; refuses a model or tensor that does not fit.</summary>
    public static void LoadInto(LlamaModel model, string dir)
    {
        var (cfgPath, weightsPath) = AdapterFolder.Files(dir);
        var (config, layers, hidden, heads, kv, hd) = HintAdapterFile.ReadConfig(cfgPath);
        var c = model.Config;
        if (layers != c.NumHiddenLayers || hidden != c.HiddenSize || heads != c.NumAttentionHeads || kv != c.NumKeyValueHeads || hd != c.HeadDim)
            throw new InvalidDataException($"{cfgPath}: HINT adapter is for {layers} layers, hidden {hidden}, {heads} heads ({kv} kv); "
                + $"the model has {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads ({c.NumKeyValueHeads} kv)");
        try { Inject(model, config, 0); }
        catch (ArgumentException e) { throw new InvalidDataException($"{dir}: {e.Message}"); }
        using var f = SafetensorsFile.Open(weightsPath);
        foreach (var (name, p) in model.NamedParameters().Where(p => !p.Parameter.Frozen))
        {
            string full = Prefix + name;
            if (!f.Contains(full)) throw new InvalidDataException($"{weightsPath}: tensor \"{full}\" is missing");
            var s = f.Info(full).Shape;
            if (!s.SequenceEqual(p.Shape.Select(x => (long)x))) throw new InvalidDataException($"{weightsPath}: \"{full}\" has shape [{string.Join(",", s)}], expected [{string.Join(",", p.Shape)}]");
            p.Load(f.ReadF32(full));
        }
    }
}
