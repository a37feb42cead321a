// PEFT's prompt-learning adapters (prompt tuning, prefix tuning) on disk: adapter_config.json (peft_type
// PROMPT_TUNING or PREFIX_TUNING, num_virtual_tokens, token_dim, num_layers, num_attention_heads, …) and
// adapter_model.safetensors with one tensor, `prompt_embeddings`: (P, hidden) soft prompt rows, or for prefix tuning
// the (P, num_layers·2·token_dim) prefixes — the projection MLP's output when prefix_projection was used, as PEFT
// saves it, so a loader needs no MLP.
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Checkpoints;

namespace InstructTune.Peft;

public sealed class PromptLearningFile
{
    public const string TensorName = "prompt_embeddings";
    public bool IsPrefix { get; }
    public int NumVirtualTokens { get; }
    public int Width { get; }
    public float[] Embeddings { get; }

    private PromptLearningFile(bool prefix, int p, int width, float[] e) { IsPrefix = prefix; NumVirtualTokens = p; Width = width; Embeddings = e; }

    public static PromptLearningFile Load(string dir)
    {
        var (cfgPath, weightsPath) = AdapterFolder.Files(dir);
        var root = AdapterFolder.ReadConfig(cfgPath);
        string type = root.TryGetProperty("peft_type", out var pt) ? pt.GetString() ?? "" : "";
        if (type is not ("PROMPT_TUNING" or "PREFIX_TUNING"))
            throw new InvalidDataException($"{cfgPath}: peft_type \"{type}\" is not PROMPT_TUNING or PREFIX_TUNING");
        int p = root.TryGetProperty("num_virtual_tokens", out var nv) && nv.TryGetInt32(out var v) && v > 0 ? v
            : throw new InvalidDataException($"{cfgPath}: missing or invalid key \"num_virtual_tokens\"");
        if (root.TryGetProperty("num_transformer_submodules", out var sub) && sub.ValueKind == JsonValueKind.Number && sub.GetInt32() != 1)
            throw new InvalidDataException($"{cfgPath}: num_transformer_submodules {sub.GetInt32()} is not 1 (a causal LM has one)");
        using var f = SafetensorsFile.Open(weightsPath);
        if (!f.Contains(TensorName)) throw new InvalidDataException($"{weightsPath}: no \"{TensorName}\" tensor");
        foreach (var name in f.Tensors.Keys)
            if (name != TensorName) throw new InvalidDataException($"{weightsPath}: tensor \"{name}\" is not part of a {type} adapter (only \"{TensorName}\")");
        var shape = f.Info(TensorName).Shape;
        if (shape.Length != 2 || shape[0] != p)
            throw new InvalidDataException($"{weightsPath}: \"{TensorName}\" has shape [{string.Join(",", shape)}]; expected [num_virtual_tokens={p}, width]");
        return new PromptLearningFile(type == "PREFIX_TUNING", p, (int)shape[1], f.ReadF32(TensorName));
    }

    /// <summary>Writes prompt_embeddings and the config PEFT expects (atomically).</summary>
    public static void Save(string dir, string peftType, float[] embeddings, int p, int width, JsonObject keys, string baseModelPath)
    {
        Directory.CreateDirectory(dir);
        SafetensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), [TensorToWrite.FromF32(TensorName, DType.F32, [p, width], embeddings)]);
        var json = new JsonObject
        {
            ["peft_type"] = peftType,
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModelPath,
            ["revision"] = null,
            ["inference_mode"] = true,
            ["num_virtual_tokens"] = p,
            ["num_transformer_submodules"] = 1,
        };
        foreach (var (k, v) in keys) json[k] = v?.DeepClone();
        AtomicFile.WriteAllText(Path.Combine(dir, "adapter_config.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
