// Random-initialised checkpoints in Hugging Face layout (itune init): weights ~ N(0, 0.02) as transformers
// initialises Llama, norms 1, biases 0. Tensors are generated one at a time while writing, in parallel chunks
// with their own seeded streams, so the result is deterministic for a seed and memory stays at one tensor.
using InstructTune.Checkpoints;

namespace InstructTune.Models;

public static class RandomCheckpoint
{
    public const float Std = 0.02f;

    /// <summary>Every tensor of the model with its HF name and shape (lm_head omitted when tied).</summary>
    public static IEnumerable<(string Name, long[] Shape)> TensorShapes(LlamaConfig c)
    {
        long D = c.HiddenSize, F = c.IntermediateSize, V = c.VocabSize;
        long q = (long)c.NumAttentionHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim;
        bool qkvBias = c.AttentionBias || c.QkvBias;
        yield return ("model.embed_tokens.weight", [V, D]);
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}.";
            yield return (p + "input_layernorm.weight", [D]);
            yield return (p + "self_attn.q_proj.weight", [q, D]);
            if (qkvBias) yield return (p + "self_attn.q_proj.bias", [q]);
            yield return (p + "self_attn.k_proj.weight", [kv, D]);
            if (qkvBias) yield return (p + "self_attn.k_proj.bias", [kv]);
            yield return (p + "self_attn.v_proj.weight", [kv, D]);
            if (qkvBias) yield return (p + "self_attn.v_proj.bias", [kv]);
            yield return (p + "self_attn.o_proj.weight", [D, q]);
            if (c.AttentionBias) yield return (p + "self_attn.o_proj.bias", [D]);
            yield return (p + "post_attention_layernorm.weight", [D]);
            yield return (p + "mlp.gate_proj.weight", [F, D]);
            yield return (p + "mlp.up_proj.weight", [F, D]);
            yield return (p + "mlp.down_proj.weight", [D, F]);
            if (c.MlpBias)
            {
                yield return (p + "mlp.gate_proj.bias", [F]);
                yield return (p + "mlp.up_proj.bias", [F]);
                yield return (p + "mlp.down_proj.bias", [D]);
            }
        }
        yield return ("model.norm.weight", [D]);
        if (!c.TieWordEmbeddings) yield return ("lm_head.weight", [V, D]);
    }

    /// <summary>Writes config.json and model.safetensors (or shards) for a random model into <paramref name="dir"/>.</summary>
    public static void Create(LlamaConfig config, string dir, ulong seed, DType dtype, long maxShardBytes = long.MaxValue)
    {
        var tensors = TensorShapes(config).Select((t, i) => new TensorToWrite(t.Name, dtype, t.Shape,
            () => DTypes.FromF32(dtype, Values(t.Name, t.Shape, seed, i)))).ToList();
        Directory.CreateDirectory(dir);
        (config with { TorchDtype = LlamaCheckpoint.TorchDtypeName(dtype) }).Save(Path.Combine(dir, "config.json"));
        SafetensorsWriter.WriteCheckpoint(dir, tensors, maxShardBytes);
    }

    private static float[] Values(string name, long[] shape, ulong seed, int index)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var v = new float[n];
        if (name.EndsWith("norm.weight")) { Array.Fill(v, 1f); return v; }
        if (name.EndsWith(".bias")) return v;
        const int Chunk = 1 << 20;
        int chunks = (int)((n + Chunk - 1) / Chunk);
        Parallel.For(0, chunks, ch =>
        {
            // SplitMix64 stream per (seed, tensor, chunk); Box–Muller pairs.
            ulong s = seed * 0x9E3779B97F4A7C15UL ^ ((ulong)index << 32) ^ (ulong)ch;
            long lo = (long)ch * Chunk, hi = Math.Min(n, lo + Chunk);
            for (long i = lo; i < hi; i += 2)
            {
                double u1 = (Next(ref s) >> 11) * (1.0 / (1UL << 53)) + 1e-300, u2 = (Next(ref s) >> 11) * (1.0 / (1UL << 53));
                double r = Math.Sqrt(-2 * Math.Log(u1)) * Std;
                v[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
                if (i + 1 < hi) v[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
            }
        });
        return v;
    }

    private static ulong Next(ref ulong s)
    {
        ulong z = s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
