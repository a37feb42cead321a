// IaSFT sparse deltas on disk (an InstructTune layout; PEFT has no sparse type). An adapter folder holds:
//   adapter_config.json        {"peft_type": "IASFT", "task_type": "CAUSAL_LM", "base_model_name_or_path",
//                               "fraction", "selection": "per_tensor" | "global", "fisher_batches", "target_modules",
//                               "weight_shapes": {module: [out, in]}, "base_checksum": "crc32c:xxxxxxxx"}
//   adapter_model.safetensors  per module, base_model.model.<module>.weight.iasft_index  I64 [k]  flat row-major
//                               positions r·in + c in the (out, in) weight, ascending;
//                               base_model.model.<module>.weight.iasft_values F32 [k]  the deltas: W[index] += values.
// base_checksum is CRC-32C over the float32 bits of the base weights at every stored position (modules in name
// order), so a delta made for another base — or applied to an already merged one — is refused.
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Checkpoints;
using InstructTune.Engine.Modules;

namespace InstructTune.Peft.Iasft;

/// <summary>One module's sparse delta: its weight shape, positions and values.</summary>
public sealed record SparseDelta(int Out, int In, int[] Index, float[] Values);

public sealed class IasftAdapterFile
{
    public const string PeftType = "IASFT";
    public const string Prefix = "base_model.model.";
    public const string IndexSuffix = ".weight.iasft_index";
    public const string ValuesSuffix = ".weight.iasft_values";

    public IasftConfig Config { get; }
    /// <summary>Module name (e.g. "model.layers.0.mlp.down_proj") → its delta, in name order.</summary>
    public IReadOnlyDictionary<string, SparseDelta> Deltas { get; }
    public uint BaseChecksum { get; }
    public string Dir { get; }

    private IasftAdapterFile(string dir, IasftConfig config, SortedDictionary<string, SparseDelta> deltas, uint checksum)
    { Dir = dir; Config = config; Deltas = deltas; BaseChecksum = checksum; }

    public static IasftAdapterFile Load(string dir)
    {
        var (cfgPath, weightsPath) = AdapterFolder.Files(dir);
        var root = AdapterFolder.ReadConfig(cfgPath);
        if (!root.TryGetProperty("peft_type", out var pt) || pt.GetString() != PeftType)
            throw new InvalidDataException($"{cfgPath}: peft_type is not {PeftType}");
        if (!root.TryGetProperty("base_checksum", out var ck) || ck.GetString() is not { } cks || !cks.StartsWith("crc32c:")
            || !uint.TryParse(cks[7..], System.Globalization.NumberStyles.HexNumber, null, out var checksum))
            throw new InvalidDataException($"{cfgPath}: base_checksum missing or not \"crc32c:<8 hex digits>\"");
        if (!root.TryGetProperty("weight_shapes", out var shapes) || shapes.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{cfgPath}: weight_shapes missing");
        var config = new IasftConfig
        {
            Fraction = root.TryGetProperty("fraction", out var f) ? f.GetDouble() : 0,
            Selection = root.TryGetProperty("selection", out var s) && s.GetString() == "global" ? FisherSelection.Global : FisherSelection.PerTensor,
            FisherBatches = root.TryGetProperty("fisher_batches", out var nb) ? nb.GetInt32() : 0,
            TargetModules = root.TryGetProperty("target_modules", out var tm) ? tm.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : [],
        };
        var deltas = new SortedDictionary<string, SparseDelta>(StringComparer.Ordinal);
        using var file = SafetensorsFile.Open(weightsPath);
        foreach (var name in file.Tensors.Keys)
        {
            if (!name.StartsWith(Prefix) || !(name.EndsWith(IndexSuffix) || name.EndsWith(ValuesSuffix)))
                throw new InvalidDataException($"{weightsPath}: tensor \"{name}\" is not an IaSFT tensor (base_model.model.<module>{IndexSuffix} / {ValuesSuffix})");
            if (!name.EndsWith(IndexSuffix)) continue;
            string module = name[Prefix.Length..^IndexSuffix.Length];
            string valuesName = Prefix + module + ValuesSuffix;
            if (!file.Contains(valuesName)) throw new InvalidDataException($"{weightsPath}: \"{name}\" has no \"{valuesName}\"");
            var idxInfo = file.Info(name);
            if (idxInfo.DType != DType.I64 || idxInfo.Shape.Length != 1)
                throw new InvalidDataException($"{weightsPath}: \"{name}\" must be I64 [k], is {idxInfo.DType} [{string.Join(",", idxInfo.Shape)}]");
            var values = file.ReadF32(valuesName);
            var raw = MemoryMarshal.Cast<byte, long>(file.Bytes(name));
            if (values.Length != raw.Length) throw new InvalidDataException($"{weightsPath}: {module}: {raw.Length} indices but {values.Length} values");
            if (!shapes.TryGetProperty(module, out var shp) || shp.GetArrayLength() != 2)
                throw new InvalidDataException($"{cfgPath}: weight_shapes has no [out, in] for {module}");
            int O = shp[0].GetInt32(), I = shp[1].GetInt32();
            var index = new int[raw.Length];
            for (int j = 0; j < raw.Length; j++)
            {
                if (raw[j] < 0 || raw[j] >= (long)O * I || (j > 0 && raw[j] <= raw[j - 1]))
                    throw new InvalidDataException($"{weightsPath}: {module}: index {raw[j]} (entry {j}) is outside the {O}×{I} weight or not ascending");
                index[j] = (int)raw[j];
            }
            deltas[module] = new SparseDelta(O, I, index, values);
        }
        if (deltas.Count == 0) throw new InvalidDataException($"{weightsPath}: no IaSFT deltas found");
        return new IasftAdapterFile(dir, config, deltas, checksum);
    }

    /// <summary>CRC-32C over the float32 bits of the base weights at the stored positions (modules in name order);
    /// <paramref name="baseValue"/>(module, flat index) reads the base.</summary>
    public static uint Checksum(IEnumerable<(string Module, int[] Index)> deltas, Func<string, int, float> baseValue)
    {
        var bytes = new List<byte>();
        foreach (var (module, index) in deltas.OrderBy(d => d.Module, StringComparer.Ordinal))
            foreach (var i in index) bytes.AddRange(BitConverter.GetBytes(baseValue(module, i)));
        return Training.Logging.Crc32C.Compute(bytes.ToArray());
    }

    /// <summary>Refuses this delta for a base whose weights differ at its positions (another model, or one already merged).</summary>
    public void CheckBase(Func<string, int, float> baseValue)
    {
        uint have = Checksum(Deltas.Select(d => (d.Key, d.Value.Index)), baseValue);
        if (have != BaseChecksum)
            throw new InvalidDataException($"this IaSFT delta was made for another base model: the base weights at its {Deltas.Sum(d => d.Value.Index.Length)} positions " +
                $"have checksum crc32c:{have:x8}, the delta expects crc32c:{BaseChecksum:x8} (a different checkpoint, or one the delta is already merged into)");
    }
}

public static class IasftAdapterIO
{
    public static void Save(Module model, IasftConfig config, string dir, string baseModelPath = "")
    {
        var layers = IasftInjector.Find(model);
        if (layers.Count == 0) throw new InvalidOperationException("the model has no IaSFT deltas to save");
        if (layers.Any(l => l.Layer.Merged)) throw new InvalidOperationException("IaSFT deltas are merged; unmerge before saving");
        Directory.CreateDirectory(dir);
        var tensors = new List<TensorToWrite>();
        foreach (var (name, l) in layers.OrderBy(l => l.Name, StringComparer.Ordinal))
        {
            var idx = l.Index.Select(i => (long)i).ToArray();
            tensors.Add(new TensorToWrite(IasftAdapterFile.Prefix + name + IasftAdapterFile.IndexSuffix, DType.I64, [idx.Length],
                () => MemoryMarshal.AsBytes(idx.AsSpan()).ToArray()));
            tensors.Add(TensorToWrite.FromF32(IasftAdapterFile.Prefix + name + IasftAdapterFile.ValuesSuffix, DType.F32, [l.Values.Length], l.Values.ToArray()));
        }
        SafetensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), tensors);
        var byName = layers.ToDictionary(l => l.Name, l => l.Layer);
        uint checksum = IasftAdapterFile.Checksum(layers.Select(l => (l.Name, l.Layer.Index)), (m, i) => byName[m].Base.Weight.Span[i]);
        var shapes = new JsonObject();
        foreach (var (name, l) in layers.OrderBy(l => l.Name, StringComparer.Ordinal)) shapes[name] = new JsonArray(l.OutFeatures, l.InFeatures);
        var json = new JsonObject
        {
            ["peft_type"] = IasftAdapterFile.PeftType,
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModelPath,
            ["fraction"] = config.Fraction,
            ["selection"] = config.Selection == FisherSelection.Global ? "global" : "per_tensor",
            ["fisher_batches"] = config.FisherBatches,
            ["target_modules"] = new JsonArray(config.TargetModules.Select(t => (JsonNode)t!).ToArray()),
            ["trainable_values"] = layers.Sum(l => l.Layer.Index.Length),
            ["weight_shapes"] = shapes,
            ["base_checksum"] = $"crc32c:{checksum:x8}",
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "adapter_config.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Injects the deltas the folder holds and loads their values; refuses a module that is missing, a
    /// shape that differs, or a base whose weights differ at the delta's positions, naming it.</summary>
    public static IasftAdapterFile LoadInto(Module model, string dir)
    {
        var file = IasftAdapterFile.Load(dir);
        var linears = new Dictionary<string, Linear>();
        foreach (var (module, d) in file.Deltas)
        {
            Module m;
            try { m = model.GetModule(module); }
            catch (Exception e) when (e is ArgumentException or KeyNotFoundException)
            { throw new InvalidDataException($"{dir}: IaSFT delta module '{module}' does not exist in the model"); }
            if (m is not Linear linear) throw new InvalidDataException($"{dir}: IaSFT delta module '{module}' is a {m.GetType().Name}, not a Linear");
            if (linear.OutFeatures != d.Out || linear.InFeatures != d.In)
                throw new InvalidDataException($"{dir}: IaSFT delta for '{module}' is for a {d.Out}×{d.In} weight; the model's is {linear.OutFeatures}×{linear.InFeatures}");
            linears[module] = linear;
        }
        try { file.CheckBase((m, i) => linears[m].Weight.Span[i]); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{dir}: {e.Message}", e); }
        foreach (var (name, layer) in IasftInjector.Inject(model, file.Deltas.Select(d => (d.Key, d.Value.Index)).ToList()))
            layer.Values.Load(file.Deltas[name].Values);
        return file;
    }
}
