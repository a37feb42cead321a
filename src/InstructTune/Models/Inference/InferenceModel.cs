// The Llama-family decoder for inference: weights straight from a Hugging Face checkpoint (float32 or bf16,
// memory-mapped, computing in float32), optional unmerged LoRA deltas, and a KV-cache forward pass that takes
// chunks of several sequences at once (prefill = a chunk of many tokens, decode = one token per sequence).
// Linear layers run on all tokens of the step together; attention runs per sequence over its own cache,
// so padding never enters the computation. Reads top to bottom: weights, loading, forward, attention.
using InstructTune.Checkpoints;
using InstructTune.Peft.Lora;

namespace InstructTune.Models.Inference;

/// <summary>A linear layer y = W·x + b (+ LoRA delta), HF layout W [out, in].</summary>
public sealed class LinearWeights(WeightMatrix w, float[]? bias)
{
    public WeightMatrix W { get; } = w;
    public float[]? Bias { get; } = bias;
    public LoraDelta? Lora { get; set; }
    public int In => W.Cols;
    public int Out => W.Rows;

    /// <summary>Y[T, Out] = X[T, In]·Wᵀ + b + ((X·Aᵀ)·Bᵀ)·scale; <paramref name="rows"/> adds each row's own adapter.</summary>
    public void Forward(ReadOnlySpan<float> X, Span<float> Y, int T, RowAdapters? rows = null)
    {
        LinearKernels.Forward(X, W, Bias, Y, T);
        AddLora(X, Y, T, rows);
    }

    /// <summary>Several linears of the same input in one parallel region (q/k/v; gate/up).</summary>
    public static void ForwardMany(float[] X, int T, params (LinearWeights L, float[] Y)[] products) => ForwardMany(X, T, null, products);

    public static void ForwardMany(float[] X, int T, RowAdapters? rows, params (LinearWeights L, float[] Y)[] products)
    {
        LinearKernels.ForwardMany(X, T, products.Select(p => (p.L.W, p.L.Bias, p.Y)).ToArray());
        foreach (var (l, y) in products) l.AddLora(X, y, T, rows);
    }

    private void AddLora(ReadOnlySpan<float> X, Span<float> Y, int T, RowAdapters? rows)
    {
        if (Lora is { } d) AddDelta(d, X, Y, T);
        if (rows == null) return;
        // Rows of each per-sequence adapter are gathered, get that adapter's delta, and are scattered back.
        foreach (var (adapter, rowIds) in rows.Groups)
        {
            if (!adapter.Deltas.TryGetValue(this, out var a)) continue;
            int R = rowIds.Length;
            var xs = new float[R * In];                                      // (R, In)
            var ys = new float[R * Out];                                     // (R, Out)
            for (int r = 0; r < R; r++) X.Slice(rowIds[r] * In, In).CopyTo(xs.AsSpan(r * In, In));
            AddDelta(a, xs, ys, R);
            for (int r = 0; r < R; r++)
                System.Numerics.Tensors.TensorPrimitives.Add(Y.Slice(rowIds[r] * Out, Out), ys.AsSpan(r * Out, Out), Y.Slice(rowIds[r] * Out, Out));
        }
    }

    private static void AddDelta(LoraDelta d, ReadOnlySpan<float> X, Span<float> Y, int T)
    {
        var ax = new float[T * d.Rank];                                     // (T, r)
        LinearKernels.Forward(X, WeightMatrix.FromF32(d.Rank, d.In, d.A), [], ax, T);
        var bax = new float[T * d.Out];                                     // (T, Out)
        LinearKernels.Forward(ax, WeightMatrix.FromF32(d.Out, d.Rank, d.B), [], bax, T);
        System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(bax, d.Scale, Y[..(T * d.Out)], Y[..(T * d.Out)]);
    }
}

/// <summary>
/// A LoRA adapter prepared for one model without being attached to it: its deltas keyed by the model's linear
/// layers. Several of these can serve different sequences of the same forward pass (multi-LoRA on one base):
/// each <see cref="SequenceChunk"/> names its own, and the base weights are streamed once for all of them.
/// </summary>
public sealed class InferenceAdapter(string name, IReadOnlyDictionary<LinearWeights, LoraDelta> deltas)
{
    public string Name { get; } = name;
    internal IReadOnlyDictionary<LinearWeights, LoraDelta> Deltas { get; } = deltas;
}

/// <summary>Which token rows of a forward pass use which per-sequence adapter.</summary>
public sealed class RowAdapters(IReadOnlyList<(InferenceAdapter Adapter, int[] Rows)> groups)
{
    public IReadOnlyList<(InferenceAdapter Adapter, int[] Rows)> Groups { get; } = groups;
}

public sealed class DecoderLayerWeights
{
    public required float[] InputNorm, PostAttentionNorm;
    public required LinearWeights Q, K, V, O, Gate, Up, Down;
    public IEnumerable<(string Name, LinearWeights L)> Linears(int i)
    {
        string p = $"model.layers.{i}.";
        yield return (p + "self_attn.q_proj", Q); yield return (p + "self_attn.k_proj", K);
        yield return (p + "self_attn.v_proj", V); yield return (p + "self_attn.o_proj", O);
        yield return (p + "mlp.gate_proj", Gate); yield return (p + "mlp.up_proj", Up); yield return (p + "mlp.down_proj", Down);
    }
}

/// <summary>A run of consecutive tokens of one sequence (cache) to feed in one step; positions default to the cache index;
/// <paramref name="Adapter"/> adds a LoRA adapter for this sequence only (on top of any attached one).</summary>
public sealed record SequenceChunk(KvCache Cache, int[] Tokens, int[]? Positions = null, bool AllLogits = false,
    InferenceAdapter? Adapter = null);

public sealed partial class InferenceModel : IDisposable
{
    public LlamaConfig Config { get; }
    public WeightMatrix Embed { get; }
    public WeightMatrix LmHead { get; }
    public float[] FinalNorm { get; }
    public DecoderLayerWeights[] Layers { get; }
    public IReadOnlyList<string> UnusedTensors { get; }
    /// <summary>Bytes of weights as held (bf16 checkpoints stay bf16).</summary>
    public long WeightBytes { get; }
    private readonly RotaryTable _rope;
    private readonly CheckpointFolder? _checkpoint;

    public InferenceModel(LlamaConfig config, WeightMatrix embed, WeightMatrix lmHead, float[] finalNorm,
        DecoderLayerWeights[] layers, CheckpointFolder? owner = null, IReadOnlyList<string>? unused = null)
    {
        Config = config; Embed = embed; LmHead = lmHead; FinalNorm = finalNorm; Layers = layers;
        _checkpoint = owner; UnusedTensors = unused ?? [];
        _rope = new RotaryTable(config);
        WeightBytes = embed.ByteLength + (ReferenceEquals(lmHead, embed) ? 0 : lmHead.ByteLength)
            + layers.Sum(l => l.Linears(0).Sum(x => x.L.W.ByteLength));
    }

    public KvCache CreateCache(int capacity) => new(Config, capacity);

    /// <summary>Attaches LoRA deltas to the named linears (unmerged); throws when a module does not exist or mismatches.</summary>
    public void ApplyAdapter(LoraAdapterFile adapter)
    {
        foreach (var (lin, d) in PrepareAdapter(adapter, "attached").Deltas) lin.Lora = d;
    }

    /// <summary>Checks an adapter against this model and keys its deltas by linear layer, without attaching it
    /// (for per-sequence adapters, <see cref="SequenceChunk.Adapter"/>).</summary>
    public InferenceAdapter PrepareAdapter(LoraAdapterFile adapter, string name)
    {
        var byName = Layers.SelectMany((l, i) => l.Linears(i)).ToDictionary(x => x.Name, x => x.L);
        var deltas = new Dictionary<LinearWeights, LoraDelta>();
        foreach (var (module, d) in adapter.Deltas)
        {
            if (!byName.TryGetValue(module, out var lin))
                throw new InvalidDataException($"adapter targets \"{module}\", which is not a linear layer of this model");
            if (d.In != lin.In || d.Out != lin.Out)
                throw new InvalidDataException($"adapter \"{module}\": A/B give [{d.Out}×{d.In}], the layer is [{lin.Out}×{lin.In}]");
            deltas[lin] = d;
        }
        return new InferenceAdapter(name, deltas);
    }

    private bool _disposed;

    /// <summary>Unmaps the checkpoint; weights that live in the mapping are gone afterwards, so Forward refuses.</summary>
    public void Dispose()
    {
        _disposed = true;
        _checkpoint?.Dispose();
    }
}
