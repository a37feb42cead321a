// `itune export gguf`: a Llama-family checkpoint (optionally with a LoRA adapter merged in) as one GGUF v3 file that
// llama.cpp runs with the same numbers, or the adapter alone as a GGUF LoRA adapter. What llama.cpp expects, as its
// converter (convert_hf_to_gguf.py / convert_lora_to_gguf.py) writes it:
//   * architecture: "llama" for Llama and Mistral (llama.cpp has no separate Mistral arch; it also has no sliding
//     window for it: logits agree while the context is within the window), "qwen2" for Qwen2;
//   * tensor names: token_embd, output_norm, output (left out when tied), blk.N.{attn_norm, attn_q, attn_k, attn_v,
//     attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}.{weight,bias};
//   * Q/K layout: HF stores q_proj/k_proj rows for rotate-half RoPE (pairs (i, i + hd/2)); llama.cpp's "llama" arch
//     rotates adjacent pairs (2i, 2i+1). So for "llama" the rows of each head are interleaved — new row 2i = old
//     row i, new row 2i+1 = old row hd/2 + i — for q (per query head) and k (per KV head), biases and LoRA B alike.
//     "qwen2" uses NeoX (rotate-half) RoPE in llama.cpp and keeps HF order;
//   * RoPE: rope.freq_base, rope.dimension_count = head_dim; linear scaling as rope.scaling.type/factor; Llama-3
//     scaling as the per-frequency divisors in a rope_freqs.weight tensor (the llama3 formula evaluated here);
//   * dtypes: 1-D tensors (norms, biases, rope_freqs) stay F32; matrices take the asked dtype, q8_0 only for rows
//     that are a multiple of 32 values (others F16, reported);
//   * general.file_type: 0 all F32, 1 mostly F16, 7 mostly Q8_0, 32 mostly BF16.
// The file is written atomically (temp file + rename): a failed export never leaves a partial file at --out.
using InstructTune.Checkpoints;
using InstructTune.Engine.Quantization;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;
using InstructTune.Templates;
using InstructTune.Tokenizers;

namespace InstructTune.Export.Gguf;

public enum GgufDType { F32, F16, BF16, Q8_0 }

public sealed record GgufExportOptions(string ModelDir, string OutPath, GgufDType DType, string? AdapterDir = null, bool AdapterOnly = false);

/// <summary>What was written: architecture, tensor count, types used, and anything the user should know.</summary>
public sealed record GgufExportReport(string Architecture, int Tensors, long Bytes, IReadOnlyDictionary<string, int> TensorTypes, IReadOnlyList<string> Notes);

public static class GgufExporter
{
    public static GgufDType ParseDType(string s) => s.ToLowerInvariant() switch
    {
        "f32" or "float32" => GgufDType.F32,
        "f16" or "float16" => GgufDType.F16,
        "bf16" or "bfloat16" => GgufDType.BF16,
        "q8_0" => GgufDType.Q8_0,
        _ => throw new ArgumentException($"--dtype {s}: expected f32, f16, bf16 or q8_0"),
    };

    public static string Architecture(LlamaConfig c) => c.ModelType switch
    {
        "llama" or "mistral" => "llama",
        "qwen2" => "qwen2",
        _ => throw new NotSupportedException($"model_type {c.ModelType}: GGUF export handles llama, mistral and qwen2"),
    };

    public static GgufExportReport Export(GgufExportOptions o)
    {
        if (o.AdapterOnly && o.AdapterDir == null) throw new ArgumentException("--adapter-only needs --adapter DIR");
        using var model = InferenceModel.Load(o.ModelDir);
        var c = model.Config;
        string arch = Architecture(c);
        if (c.MlpBias) throw new NotSupportedException($"{o.ModelDir}: mlp_bias=true has no llama.cpp tensor for {arch}");
        var notes = new List<string>();
        if (c.SlidingWindow is { } win && win < c.MaxPositionEmbeddings)
            notes.Add($"sliding_window={win}: llama.cpp's {arch} architecture attends to the whole context, so outputs agree only while the context is at most {win} tokens");
        if (o.AdapterDir != null && File.Exists(Path.Combine(o.AdapterDir, Models.InstructionAware.TrainableTokenRows.FileName)))
            throw new InvalidDataException($"{o.AdapterDir}: holds {Models.InstructionAware.TrainableTokenRows.FileName} (added marker tokens grow the vocabulary): merge it first with `itune merge` and export the merged folder");
        LoraAdapterFile? adapter = o.AdapterDir != null ? LoraAdapterFile.Load(o.AdapterDir) : null;
        var w = new GgufWriter();
        var types = new Dictionary<string, int>();
        bool permute = arch == "llama";

        void Tensor(string name, long[] shape, float[] data, bool quantizable = true)
        {
            var type = shape.Length == 1 || !quantizable ? GgmlType.F32 : o.DType switch
            {
                GgufDType.F32 => GgmlType.F32,
                GgufDType.F16 => GgmlType.F16,
                GgufDType.BF16 => GgmlType.BF16,
                _ => shape[^1] % Q8_0.BlockSize == 0 ? GgmlType.Q8_0 : GgmlType.F16,
            };
            if (o.DType == GgufDType.Q8_0 && shape.Length == 2 && type == GgmlType.F16)
                notes.Add($"{name}: rows of {shape[^1]} values are not a multiple of 32; written as F16");
            types[type.ToString()] = types.GetValueOrDefault(type.ToString()) + 1;
            w.AddTensor(name, shape, type, () => Encode(data, type));
        }

        if (o.AdapterOnly)
        {
            WriteAdapter(w, model, adapter!, arch, permute, Tensor);
        }
        else
        {
            if (adapter != null) model.ApplyAdapter(adapter);
            WriteModelMetadata(w, model, arch, o);
            Tensor("token_embd.weight", [c.VocabSize, c.HiddenSize], model.Embed.ToF32());
            int hd = c.HeadDim;
            for (int l = 0; l < c.NumHiddenLayers; l++)
            {
                var L = model.Layers[l];
                string p = $"blk.{l}.";
                Tensor(p + "attn_norm.weight", [c.HiddenSize], L.InputNorm);
                Linear(p + "attn_q", L.Q, permute ? c.NumAttentionHeads : 0);
                Linear(p + "attn_k", L.K, permute ? c.NumKeyValueHeads : 0);
                Linear(p + "attn_v", L.V, 0);
                Linear(p + "attn_output", L.O, 0);
                Tensor(p + "ffn_norm.weight", [c.HiddenSize], L.PostAttentionNorm);
                Linear(p + "ffn_gate", L.Gate, 0);
                Linear(p + "ffn_up", L.Up, 0);
                Linear(p + "ffn_down", L.Down, 0);
            }
            Tensor("output_norm.weight", [c.HiddenSize], model.FinalNorm);
            if (!ReferenceEquals(model.LmHead, model.Embed)) Tensor("output.weight", [c.VocabSize, c.HiddenSize], model.LmHead.ToF32());
            if (c.RopeScaling is { Type: "llama3" } rs) Tensor("rope_freqs.weight", [hd / 2], Llama3RopeDivisors(c, rs), quantizable: false);

            // A linear layer with its LoRA delta merged (W + scale·B·A), heads interleaved for llama's RoPE.
            void Linear(string name, LinearWeights lin, int heads)
            {
                var W = lin.W.ToF32();
                if (lin.Lora is { } d) MergeLora(W, d);
                if (heads > 0) W = InterleaveHeads(W, heads, lin.In);
                Tensor(name + ".weight", [lin.Out, lin.In], W);
                if (lin.Bias is { } b) Tensor(name + ".bias", [lin.Out], heads > 0 ? InterleaveHeads(b, heads, 1) : b);
            }
        }
        long bytes = 0;
        AtomicFile.Write(o.OutPath, fs => { w.Write(fs); bytes = fs.Length; });
        return new GgufExportReport(arch, w.TensorNames.Count, bytes, types, notes.Distinct().ToList());
    }

    private static void WriteModelMetadata(GgufWriter w, InferenceModel model, string arch, GgufExportOptions o)
    {
        var c = model.Config;
        w.Add("general.architecture", arch);
        w.Add("general.name", Path.GetFileName(Path.GetFullPath(o.ModelDir).TrimEnd('/')));
        w.Add("general.file_type", o.DType switch { GgufDType.F32 => 0u, GgufDType.F16 => 1u, GgufDType.Q8_0 => 7u, _ => 32u });
        w.Add("general.quantization_version", 2u);
        w.Add("general.alignment", (uint)GgufWriter.Alignment);
        w.Add($"{arch}.vocab_size", (uint)c.VocabSize);
        w.Add($"{arch}.context_length", (uint)c.MaxPositionEmbeddings);
        w.Add($"{arch}.embedding_length", (uint)c.HiddenSize);
        w.Add($"{arch}.block_count", (uint)c.NumHiddenLayers);
        w.Add($"{arch}.feed_forward_length", (uint)c.IntermediateSize);
        w.Add($"{arch}.attention.head_count", (uint)c.NumAttentionHeads);
        w.Add($"{arch}.attention.head_count_kv", (uint)c.NumKeyValueHeads);
        w.Add($"{arch}.attention.layer_norm_rms_epsilon", (float)c.RmsNormEps);
        w.Add($"{arch}.rope.freq_base", (float)c.RopeTheta);
        w.Add($"{arch}.rope.dimension_count", (uint)c.HeadDim);
        if (c.HeadDim * c.NumAttentionHeads != c.HiddenSize)
        {
            w.Add($"{arch}.attention.key_length", (uint)c.HeadDim);
            w.Add($"{arch}.attention.value_length", (uint)c.HeadDim);
        }
        if (c.RopeScaling is { Type: "linear" } lin)
        {
            w.Add($"{arch}.rope.scaling.type", "linear");
            w.Add($"{arch}.rope.scaling.factor", (float)lin.Factor);
        }
        else if (c.RopeScaling is { Type: not "llama3" } other)
            throw new NotSupportedException($"rope_scaling type {other.Type} is not exported to GGUF (linear and llama3 are)");

        var tokenizer = TokenizerLoader.Load(o.ModelDir);
        GgufTokenizer.Write(w, o.ModelDir, c.VocabSize, tokenizer);
        // The chat template the adapter records (its folder's tokenizer_config.json / chat_template.jinja), else the model's.
        foreach (var dir in new[] { o.AdapterDir, o.ModelDir })
        {
            if (dir == null) continue;
            try { w.Add("tokenizer.chat_template", ChatTemplateLoader.FromTokenizer(dir).Source); break; }
            catch (ChatTemplateException) { }
        }
    }

    // GGUF LoRA adapter (llama.cpp's convert_lora_to_gguf layout): A as [r, in] and B as [out, r] per target linear,
    // alpha such that alpha / r is the adapter's scale (rsLoRA's alpha/√r included).
    private static void WriteAdapter(GgufWriter w, InferenceModel model, LoraAdapterFile adapter, string arch, bool permute,
        Action<string, long[], float[], bool> tensor)
    {
        var c = model.Config;
        w.Add("general.architecture", arch);
        w.Add("general.type", "adapter");
        w.Add("general.name", "lora");
        w.Add("adapter.type", "lora");
        w.Add("adapter.lora.alpha", adapter.Scale * adapter.Rank);
        var names = new Dictionary<string, (string Gguf, int Heads)>
        {
            ["self_attn.q_proj"] = ("attn_q", permute ? c.NumAttentionHeads : 0), ["self_attn.k_proj"] = ("attn_k", permute ? c.NumKeyValueHeads : 0),
            ["self_attn.v_proj"] = ("attn_v", 0), ["self_attn.o_proj"] = ("attn_output", 0),
            ["mlp.gate_proj"] = ("ffn_gate", 0), ["mlp.up_proj"] = ("ffn_up", 0), ["mlp.down_proj"] = ("ffn_down", 0),
        };
        foreach (var (module, d) in adapter.Deltas.OrderBy(x => x.Key, StringComparer.Ordinal))
        {
            var m = System.Text.RegularExpressions.Regex.Match(module, @"^model\.layers\.(\d+)\.(.+)$");
            if (!m.Success || !names.TryGetValue(m.Groups[2].Value, out var g) || int.Parse(m.Groups[1].Value) >= c.NumHiddenLayers)
                throw new InvalidDataException($"adapter module {module} has no GGUF tensor");
            if (d.Scale != adapter.Scale) throw new InvalidDataException($"adapter module {module}: per-module scales are not expressible in a GGUF adapter");
            string p = $"blk.{m.Groups[1].Value}.{g.Gguf}.weight";
            tensor(p + ".lora_a", [d.Rank, d.In], d.A, true);
            tensor(p + ".lora_b", [d.Out, d.Rank], g.Heads > 0 ? InterleaveHeads(d.B, g.Heads, d.Rank) : d.B, true);
        }
    }

    /// <summary>W += scale · B·A for W [out, in], A [r, in], B [out, r].</summary>
    public static void MergeLora(float[] W, LoraDelta d)
    {
        var row = new float[d.In];
        for (int o = 0; o < d.Out; o++)
        {
            Array.Clear(row);
            for (int k = 0; k < d.Rank; k++)
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(d.A.AsSpan(k * d.In, d.In), d.B[o * d.Rank + k] * d.Scale, row, row);
            System.Numerics.Tensors.TensorPrimitives.Add(W.AsSpan(o * d.In, d.In), row, W.AsSpan(o * d.In, d.In));
        }
    }

    /// <summary>
    /// Rows [heads·hd, cols] from HF's rotate-half order to llama.cpp's adjacent-pair order, per head:
    /// out row 2i = in row i, out row 2i+1 = in row hd/2 + i.
    /// </summary>
    public static float[] InterleaveHeads(float[] W, int heads, int cols)
    {
        int rows = W.Length / cols, hd = rows / heads, half = hd / 2;
        if (rows % heads != 0 || hd % 2 != 0) throw new InvalidDataException($"cannot split {rows} rows into {heads} heads of even size");
        var o = new float[W.Length];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
            {
                W.AsSpan((h * hd + i) * cols, cols).CopyTo(o.AsSpan((h * hd + 2 * i) * cols, cols));
                W.AsSpan((h * hd + half + i) * cols, cols).CopyTo(o.AsSpan((h * hd + 2 * i + 1) * cols, cols));
            }
        return o;
    }

    /// <summary>
    /// Llama-3 RoPE scaling as the divisors llama.cpp applies per frequency (rope_freqs): 1 for wavelengths below
    /// original_max/high_freq_factor, factor above original_max/low_freq_factor, and between them the inverse of
    /// the smooth blend (1 − s)/factor + s with s = (original_max/wavelength − low) / (high − low).
    /// </summary>
    public static float[] Llama3RopeDivisors(LlamaConfig c, RopeScaling rs)
    {
        int hd = c.HeadDim;
        double lowWavelen = rs.OriginalMaxPositionEmbeddings / rs.LowFreqFactor;
        double highWavelen = rs.OriginalMaxPositionEmbeddings / rs.HighFreqFactor;
        var f = new float[hd / 2];
        for (int i = 0; i < hd / 2; i++)
        {
            double freq = 1.0 / Math.Pow(c.RopeTheta, 2.0 * i / hd);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) f[i] = 1f;
            else if (wavelen > lowWavelen) f[i] = (float)rs.Factor;
            else
            {
                double s = (rs.OriginalMaxPositionEmbeddings / wavelen - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor);
                f[i] = (float)(1.0 / ((1 - s) / rs.Factor + s));
            }
        }
        return f;
    }

    private static byte[] Encode(float[] data, GgmlType type)
    {
        switch (type)
        {
            case GgmlType.F32:
                return System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray();
            case GgmlType.F16:
            {
                var b = new byte[data.Length * 2];
                for (int i = 0; i < data.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteHalfLittleEndian(b.AsSpan(2 * i), (Half)data[i]);
                return b;
            }
            case GgmlType.BF16:
            {
                var u = new ushort[data.Length];
                BFloat16.FromFloat(data, u);
                return System.Runtime.InteropServices.MemoryMarshal.AsBytes(u.AsSpan()).ToArray();
            }
            default:
            {
                var b = new byte[Q8_0.ByteCount(data.Length)];
                Q8_0.Quantize(data, b);
                return b;
            }
        }
    }
}
