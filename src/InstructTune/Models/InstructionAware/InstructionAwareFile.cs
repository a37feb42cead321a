// instruction_aware.safetensors: the instruction-aware variants' tensors (names in InstructionAwareModule's header),
// float32, beside the base weights (full fine-tuning: run_dir/final) or beside the adapter (LoRA/QLoRA/IA3:
// run_dir/adapter), and an "instruction_aware" entry in that folder's instructtune.json naming the variants.
// The tensors present say which variants are on; score, generate, eval and serve load them through LoadedModel.
using System.Text.Json.Nodes;
using InstructTune.Checkpoints;

namespace InstructTune.Models.InstructionAware;

/// <summary>The loaded tensors, float32 row-major: segment embeddings (4, D), per gated layer W_h, W_c (D, D), b, s (D),
/// and per layer the instruction key bias β (heads) of biased attention.</summary>
public sealed record InstructionAwareWeights(float[]? SegmentEmbeddings, IReadOnlyDictionary<int, GateWeights> Gates)
{
    /// <summary>Two-stream fusion, or null.</summary>
    public TwoStreamWeights? TwoStream { get; init; }
    /// <summary>β per decoder layer (heads each), or null without biased attention.</summary>
    public float[][]? AttentionBias { get; init; }
    /// <summary>The training-only heads (task_head, representation_head: name → weight, bias), kept for resuming.</summary>
    public IReadOnlyDictionary<string, (float[] Weight, float[] Bias, int Outputs)> Heads { get; init; } = new Dictionary<string, (float[], float[], int)>();
    /// <summary>The temperature head's clamp range (metadata temperature_min/max), when Heads has temperature_head.</summary>
    public (float Min, float Max) TemperatureRange { get; init; }

    /// <summary>τ = clamp(softplus(w·p + b), min, max) for a pooled instruction representation p (D); throws when
    /// the model has no temperature head.</summary>
    public float Temperature(ReadOnlySpan<float> pooled)
    {
        if (!Heads.TryGetValue(TemperatureHead.Name, out var h))
            throw new InvalidDataException("the model has no temperature head (train it with model.instruction_aware.temperature_targets)");
        return TemperatureHead.Temperature(h.Weight, h.Bias[0], pooled, TemperatureRange);
    }
    /// <summary>Chain-of-thought pathways, or null.</summary>
    public CotWeights? Cot { get; init; }
    /// <summary>The instruction tokens' own embedding table (vocab, hidden), or null.</summary>
    public float[]? InstructionEmbedding { get; init; }

    public InstructionAwareOptions Options => new()
    {
        SegmentEmbeddings = SegmentEmbeddings != null, InstructionEmbedding = InstructionEmbedding != null, GateLayers = [.. Gates.Keys.Order()], TwoStreamLayers = TwoStream?.Layers ?? 0,
        BiasedAttention = AttentionBias != null,
        TaskClasses = Heads.TryGetValue(InstructionHeads.TaskHeadName, out var t) ? t.Outputs : 0,
        RepresentationHead = Heads.ContainsKey(InstructionHeads.RepresentationHeadName), CotWidth = Cot?.Width ?? 0,
        TemperatureRange = Heads.ContainsKey(TemperatureHead.Name) ? TemperatureRange : null,
    };
}

/// <summary>Two-stream fusion: the first <paramref name="Layers"/> decoder layers are the instruction encoder;
/// W_x, W_c (D, D) row-major (out, in), b (D).</summary>
/// <summary>Chain-of-thought pathways: per path k, W_k (r, D), b_k (r), W_o,k (D, r), row-major (out, in).</summary>
public sealed record CotWeights(int Width, float[][] W, float[][] B, float[][] Out);

public sealed record TwoStreamWeights(int Layers, float[] Wx, float[] Wc, float[] Bias);

public sealed record GateWeights(float[] Wh, float[] Wc, float[] Bias, float[] Scale);

public static class InstructionAwareFile
{
    public const string FileName = "instruction_aware.safetensors";
    public const string JsonKey = "instruction_aware";
    /// <summary>The safetensors metadata key holding two-stream fusion's K.</summary>
    public const string TwoStreamLayersKey = "two_stream_layers";

    /// <summary>Writes the model's instruction-aware tensors into dir (nothing when the model has none).</summary>
    public static void Save(LlamaModel model, string dir)
    {
        if (model.InstructionAware is not { } ia) return;
        Directory.CreateDirectory(dir);
        var tensors = ia.NamedParameters(InstructionAwareModule.Name + ".")
            .Select(p => TensorToWrite.FromF32(p.Name, DType.F32, p.Parameter.Shape.Select(d => (long)d).ToArray(), p.Parameter.ToArray()))
            .ToList();
        var metadata = new Dictionary<string, string>();
        if (ia.Fusion is { } f) metadata[TwoStreamLayersKey] = f.Layers.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (ia.Options.TemperatureRange is { } range)
        {
            metadata[TemperatureHead.MinKey] = range.Min.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            metadata[TemperatureHead.MaxKey] = range.Max.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        }
        SafetensorsWriter.Write(Path.Combine(dir, FileName), tensors, metadata.Count == 0 ? null : metadata);
    }

    /// <summary>Adds {"instruction_aware": {...}} to dir/instructtune.json (kept: whatever else it records).</summary>
    public static void Record(LlamaModel model, string dir)
    {
        if (model.InstructionAware is not { } ia) return;
        var path = Path.Combine(dir, Data.Templating.PromptFormatFile.FileName);
        JsonObject root;
        try { root = File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? [] : []; }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}"); }
        root[JsonKey] = new JsonObject
        {
            ["file"] = FileName,
            ["segment_embeddings"] = ia.Options.SegmentEmbeddings,
            ["instruction_embedding"] = ia.Options.InstructionEmbedding,
            ["gate_layers"] = new JsonArray(ia.Options.GateLayers.Order().Select(l => (JsonNode)l).ToArray()),
            [TwoStreamLayersKey] = ia.Options.TwoStreamLayers,
            ["temperature_head"] = ia.TemperatureHead != null,
            ["cot_width"] = ia.Options.CotWidth,
            ["biased_attention"] = ia.Options.BiasedAttention,
        };
        Data.Cache.AtomicFile.WriteAllText(path, root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>The variants' tensors of dir, or null when it has none; refuses a file whose tensors do not fit the
    /// model (naming the tensor), and an instructtune.json that records variants whose file is missing.</summary>
    public static InstructionAwareWeights? TryLoad(string dir, LlamaConfig c)
    {
        var path = Path.Combine(dir, FileName);
        if (!File.Exists(path))
        {
            var json = Path.Combine(dir, Data.Templating.PromptFormatFile.FileName);
            if (File.Exists(json) && File.ReadAllText(json).Contains($"\"{JsonKey}\"", StringComparison.Ordinal))
                throw new InvalidDataException($"{json} records instruction-aware variants but {FileName} is missing");
            return null;
        }
        using var f = SafetensorsFile.Open(path);
        int D = c.HiddenSize;
        float[] Read(string name, params int[] shape)
        {
            var info = f.Info(name);
            if (!info.Shape.SequenceEqual(shape.Select(d => (long)d)))
                throw new InvalidDataException($"{path}: tensor \"{name}\" has shape [{string.Join(",", info.Shape)}], the model needs [{string.Join(",", shape)}]");
            return f.ReadF32(name);
        }
        const string P = InstructionAwareModule.Name + ".";
        float[]? seg = null, instrEmbed = null;
        var gates = new Dictionary<int, GateWeights>();
        float[][]? bias = null;
        TwoStreamWeights? twoStream = null;
        var heads = new Dictionary<string, (float[], float[], int)>();
        CotWeights? cot = null;
        foreach (var name in f.Tensors.Keys)
        {
            if (name.StartsWith(P + CotPathways.Name + ".", StringComparison.Ordinal))
            {
                cot ??= ReadCot();
                continue;
            }
            var head = System.Text.RegularExpressions.Regex.Match(name, $@"^instruction_aware\.({InstructionHeads.TaskHeadName}|{InstructionHeads.RepresentationHeadName}|{TemperatureHead.Name})\.(weight|bias)$");
            if (head.Success)
            {
                string h = head.Groups[1].Value;
                if (heads.ContainsKey(h)) continue;
                var wInfo = f.Info($"{P}{h}.weight");
                int outputs = wInfo.Shape.Length == 2 ? (int)wInfo.Shape[0] : -1;
                if (outputs < 1 || h == InstructionHeads.RepresentationHeadName && outputs != D || h == TemperatureHead.Name && outputs != 1)
                    throw new InvalidDataException($"{path}: tensor \"{P}{h}.weight\" has shape [{string.Join(",", wInfo.Shape)}]; the model needs [{(h == InstructionHeads.TaskHeadName ? "tasks" : D.ToString(System.Globalization.CultureInfo.InvariantCulture))},{D}]");
                heads[h] = (Read($"{P}{h}.weight", outputs, D), Read($"{P}{h}.bias", outputs), outputs);
                continue;
            }
            if (name == P + "segment_embeddings.weight") { seg = Read(name, InstructionSpans.Count, D); continue; }
            if (name == P + "instruction_embedding.weight") { instrEmbed = Read(name, c.VocabSize, D); continue; }
            var a = System.Text.RegularExpressions.Regex.Match(name, @"^instruction_aware\.attention_bias\.(\d+)$");
            if (a.Success)
            {
                int layer = int.Parse(a.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                if (layer >= c.NumHiddenLayers) throw new InvalidDataException($"{path}: tensor \"{name}\" biases layer {layer}; the model has {c.NumHiddenLayers}");
                bias ??= new float[c.NumHiddenLayers][];
                bias[layer] = Read(name, c.NumAttentionHeads);
                continue;
            }
            if (name.StartsWith(P + TwoStreamFusion.Name + ".", StringComparison.Ordinal))
            {
                twoStream ??= ReadTwoStream();
                continue;
            }
            var m = System.Text.RegularExpressions.Regex.Match(name, @"^instruction_aware\.gates\.(\d+)\.(gate_h\.weight|gate_c\.weight|gate\.bias|scale)$");
            if (!m.Success) throw new InvalidDataException($"{path}: unknown tensor \"{name}\"");
            int l = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            if (l >= c.NumHiddenLayers) throw new InvalidDataException($"{path}: tensor \"{name}\" gates layer {l}; the model has {c.NumHiddenLayers}");
            if (gates.ContainsKey(l)) continue;
            string g = $"{P}gates.{l}.";
            gates[l] = new GateWeights(Read(g + "gate_h.weight", D, D), Read(g + "gate_c.weight", D, D), Read(g + "gate.bias", D), Read(g + "scale", D));
        }
        if (bias != null && Array.FindIndex(bias, x => x == null) is var missing and >= 0)
            throw new InvalidDataException($"{path}: tensor \"{P}attention_bias.{missing}\" is missing (biased attention needs one per layer)");
        var range = heads.ContainsKey(TemperatureHead.Name) ? (MetaFloat(TemperatureHead.MinKey), MetaFloat(TemperatureHead.MaxKey)) : default;
        return new InstructionAwareWeights(seg, gates) { TwoStream = twoStream, AttentionBias = bias, Heads = heads, TemperatureRange = range, Cot = cot, InstructionEmbedding = instrEmbed };

        float MetaFloat(string key) =>
            f.Metadata.TryGetValue(key, out var v) && float.TryParse(v, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float x) && x > 0
                ? x : throw new InvalidDataException($"{path}: tensor \"{P}{TemperatureHead.Name}.weight\" needs a positive metadata \"{key}\" (the clamp range), found \"{v}\"");

        CotWeights ReadCot()
        {
            const string C = P + CotPathways.Name + ".";
            var known = Enumerable.Range(1, CotPathways.Paths).SelectMany(k => new[] { $"{C}path{k}.weight", $"{C}path{k}.bias", $"{C}out_{k}.weight" }).ToHashSet();
            foreach (var n in f.Tensors.Keys.Where(n => n.StartsWith(C, StringComparison.Ordinal)))
                if (!known.Contains(n)) throw new InvalidDataException($"{path}: unknown tensor \"{n}\"");
            var first = f.Info(C + "path1.weight");
            int r = first.Shape.Length == 2 ? (int)first.Shape[0] : 0;
            if (r < 1) throw new InvalidDataException($"{path}: tensor \"{C}path1.weight\" has shape [{string.Join(",", first.Shape)}], the model needs [r,{D}]");
            var W = new float[CotPathways.Paths][]; var B = new float[CotPathways.Paths][]; var O = new float[CotPathways.Paths][];
            for (int k = 0; k < CotPathways.Paths; k++)
            {
                W[k] = Read($"{C}path{k + 1}.weight", r, D); B[k] = Read($"{C}path{k + 1}.bias", r); O[k] = Read($"{C}out_{k + 1}.weight", D, r);
            }
            return new CotWeights(r, W, B, O);
        }

        TwoStreamWeights ReadTwoStream()
        {
            const string F = P + TwoStreamFusion.Name + ".";
            foreach (var n in f.Tensors.Keys.Where(n => n.StartsWith(F, StringComparison.Ordinal)))
                if (n is not (F + "x_proj.weight" or F + "c_proj.weight" or F + "bias")) throw new InvalidDataException($"{path}: unknown tensor \"{n}\"");
            if (!f.Metadata.TryGetValue(TwoStreamLayersKey, out var k) || !int.TryParse(k, System.Globalization.CultureInfo.InvariantCulture, out int K)
                || K < 1 || K > c.NumHiddenLayers)
                throw new InvalidDataException($"{path}: tensor \"{F}x_proj.weight\" needs metadata \"{TwoStreamLayersKey}\" in [1, {c.NumHiddenLayers}] (the instruction encoder's layers), found \"{k}\"");
            return new TwoStreamWeights(K, Read(F + "x_proj.weight", D, D), Read(F + "c_proj.weight", D, D), Read(F + "bias", D));
        }
    }

    /// <summary>Loads dir's tensors into a model that has the same variants attached (tests, resume of an export).</summary>
    public static void LoadInto(LlamaModel model, string dir)
    {
        var w = TryLoad(dir, model.Config) ?? throw new InvalidDataException($"{dir}: no {FileName}");
        var ia = model.InstructionAware ?? model.AttachInstructionAware(w.Options);
        if (w.SegmentEmbeddings is { } s) ia.SegmentEmbeddings!.Load(s);
        if (w.InstructionEmbedding is { } ie) ia.InstructionEmbedding!.Load(ie);
        foreach (var (l, g) in w.Gates)
        {
            var gate = ia.Gates[l];
            gate.GateH.Load(g.Wh); gate.GateC.Load(g.Wc); gate.Bias.Load(g.Bias); gate.Scale.Load(g.Scale);
        }
        if (w.AttentionBias is { } ab) for (int l = 0; l < ab.Length; l++) ia.AttentionBias![l].Load(ab[l]);
        if (w.TwoStream is { } ts)
        {
            var fusion = ia.Fusion ?? throw new InvalidDataException($"{dir}: {FileName} has two-stream fusion; the model's variants do not");
            fusion.XProj.Load(ts.Wx); fusion.CProj.Load(ts.Wc); fusion.Bias.Load(ts.Bias);
        }
        if (w.Cot is { } cw)
        {
            var cot = ia.Cot ?? throw new InvalidDataException($"{dir}: {FileName} has chain-of-thought pathways; the model's variants do not");
            for (int k = 0; k < CotPathways.Paths; k++) { cot.In[k].Weight.Load(cw.W[k]); cot.In[k].Bias.Load(cw.B[k]); cot.Out[k].Load(cw.Out[k]); }
        }
        foreach (var (name, (weight, bias, _)) in w.Heads)
        {
            var head = (name == InstructionHeads.TaskHeadName ? ia.TaskHead : name == TemperatureHead.Name ? ia.TemperatureHead : ia.RepresentationHead)
                ?? throw new InvalidDataException($"{dir}: {FileName} has instruction_aware.{name}; the model's variants do not");
            head.Weight.Load(weight); head.Bias.Load(bias);
        }
    }
}
