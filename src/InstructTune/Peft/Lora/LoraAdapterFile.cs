// Reads a LoRA adapter in the Hugging Face PEFT layout for inference: adapter_config.json (r, lora_alpha,
// target_modules, use_rslora) and adapter_model.safetensors with keys
// base_model.model.<module>.lora_A.weight [r, in] and .lora_B.weight [out, r]. Applied unmerged:
// y = W·x + (B·(A·x))·scale with scale = alpha/r, or alpha/√r for rsLoRA. With use_dora, each module also has
// base_model.model.<module>.lora_magnitude_vector [out] (PEFT drops the ".weight" of its DoRA layer when saving; a
// file that keeps it loads too): y = m ⊙ (W + scale·B·A)·x / ‖W + scale·B·A‖_row + b.
using System.Text.Json;
using InstructTune.Checkpoints;

namespace InstructTune.Peft.Lora;

/// <summary>One adapted linear layer: A [Rank, In], B [Out, Rank] in float32.</summary>
public sealed record LoraDelta(float[] A, float[] B, int Rank, int In, int Out, float Scale)
{
    /// <summary>DoRA's magnitude vector m [Out], or null for plain LoRA.</summary>
    public float[]? Magnitude { get; init; }
}

public sealed class LoraAdapterFile
{
    public int Rank { get; }
    public double Alpha { get; }
    public bool UseRsLora { get; }
    public bool UseDora { get; private init; }
    public IReadOnlyList<string> TargetModules { get; }
    public float Scale => (float)(UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank);

    /// <summary>Module name (e.g. "model.layers.0.self_attn.q_proj") → its delta.</summary>
    public IReadOnlyDictionary<string, LoraDelta> Deltas { get; }

    private LoraAdapterFile(int rank, double alpha, bool rs, List<string> targets, Dictionary<string, LoraDelta> deltas)
    {
        Rank = rank; Alpha = alpha; UseRsLora = rs; TargetModules = targets; Deltas = deltas;
    }

    public const string MagnitudeSuffix = ".lora_magnitude_vector";

    public static LoraAdapterFile Load(string dir)
    {
        var (cfgPath, weightsPath) = AdapterFolder.Files(dir);

        using var doc = ParseJson(cfgPath);
        var root = doc.RootElement;
        string peftType = root.TryGetProperty("peft_type", out var pt) && pt.ValueKind == JsonValueKind.String ? pt.GetString()! : "LORA";
        if (peftType != "LORA") throw new InvalidDataException($"{cfgPath}: peft_type \"{peftType}\" is not LORA");
        int rank = root.TryGetProperty("r", out var r) && r.TryGetInt32(out var rv) && rv > 0 ? rv
            : throw new InvalidDataException($"{cfgPath}: missing or invalid key \"r\"");
        double alpha = root.TryGetProperty("lora_alpha", out var a) && a.ValueKind == JsonValueKind.Number ? a.GetDouble()
            : throw new InvalidDataException($"{cfgPath}: missing or invalid key \"lora_alpha\"");
        bool rs = root.TryGetProperty("use_rslora", out var u) && u.ValueKind == JsonValueKind.True;
        if (root.TryGetProperty("fan_in_fan_out", out var fifo) && fifo.ValueKind == JsonValueKind.True)
            throw new InvalidDataException($"{cfgPath}: fan_in_fan_out=true is not supported");
        bool useDora = root.TryGetProperty("use_dora", out var dora) && dora.ValueKind == JsonValueKind.True;
        var targets = new List<string>();
        if (root.TryGetProperty("target_modules", out var tm))
        {
            if (tm.ValueKind == JsonValueKind.Array) targets.AddRange(tm.EnumerateArray().Select(e => e.GetString() ?? ""));
            else if (tm.ValueKind == JsonValueKind.String) targets.Add(tm.GetString()!);
        }
        var adapter = new LoraAdapterFile(rank, alpha, rs, targets, new Dictionary<string, LoraDelta>()) { UseDora = useDora };
        float scale = adapter.Scale;

        var deltas = (Dictionary<string, LoraDelta>)adapter.Deltas;
        using var f = SafetensorsFile.Open(weightsPath);
        const string Prefix = "base_model.model.";
        foreach (var name in f.Tensors.Keys.Where(n => n.EndsWith(".lora_A.weight")))
        {
            if (!name.StartsWith(Prefix)) throw new InvalidDataException($"{weightsPath}: key \"{name}\" lacks the \"{Prefix}\" prefix");
            string module = name[Prefix.Length..^".lora_A.weight".Length];
            string bName = Prefix + module + ".lora_B.weight";
            if (!f.Contains(bName)) throw new InvalidDataException($"{weightsPath}: \"{name}\" has no matching \"{bName}\"");
            var ai = f.Info(name); var bi = f.Info(bName);
            if (ai.Shape.Length != 2 || bi.Shape.Length != 2 || ai.Shape[0] != rank || bi.Shape[1] != rank)
                throw new InvalidDataException($"{weightsPath}: \"{module}\" has A [{string.Join(",", ai.Shape)}] and B [{string.Join(",", bi.Shape)}]; expected [r={rank}, in] and [out, r={rank}]");
            float[]? magnitude = null;
            if (useDora)
            {
                string mName = Prefix + module + MagnitudeSuffix;
                if (!f.Contains(mName) && f.Contains(mName + ".weight")) mName += ".weight";
                if (!f.Contains(mName)) throw new InvalidDataException($"{weightsPath}: use_dora is true but \"{module}\" has no \"{Prefix + module + MagnitudeSuffix}\"");
                var mi = f.Info(mName);
                if (mi.ElementCount != bi.Shape[0])
                    throw new InvalidDataException($"{weightsPath}: \"{mName}\" has shape [{string.Join(",", mi.Shape)}]; expected [out={bi.Shape[0]}]");
                magnitude = f.ReadF32(mName);
            }
            deltas[module] = new LoraDelta(f.ReadF32(name), f.ReadF32(bName), rank, (int)ai.Shape[1], (int)bi.Shape[0], scale) { Magnitude = magnitude };
        }
        foreach (var name in f.Tensors.Keys)
            if (!name.EndsWith(".lora_A.weight") && !name.EndsWith(".lora_B.weight")
                && !(useDora && (name.EndsWith(MagnitudeSuffix) || name.EndsWith(MagnitudeSuffix + ".weight"))))
                throw new InvalidDataException($"{weightsPath}: tensor \"{name}\" is not a LoRA A/B weight{(useDora ? " or DoRA magnitude" : "")} (modules_to_save and biases are not supported)");
        if (deltas.Count == 0) throw new InvalidDataException($"{weightsPath}: no lora_A/lora_B weights found");
        return adapter;
    }

    private static JsonDocument ParseJson(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: malformed JSON: {e.Message}", e); }
    }
}
