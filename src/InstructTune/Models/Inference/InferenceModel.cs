// The Llama-family decoder for inference: weights straight from a Hugging Face checkpoint (float32 or bf16,
// memory-mapped, computing in float32), optional unmerged LoRA deltas, and a KV-cache forward pass that takes
// chunks of several sequences at once (prefill = a chunk of many tokens, decode = one token per sequence).
// Linear layers run on all tokens of the step together; attention runs per sequence over its own cache,
// so padding never enters the computation. Reads top to bottom: weights, loading, forward, attention.
using InstructTune.Checkpoints;
using InstructTune.Models.InstructionAware;
using InstructTune.Peft.Lora;

namespace InstructTune.Models.Inference;

/// <summary>
/// A linear layer y = W·x + b, HF layout W [out, in], with the unmerged adapters PEFT can put on it:
/// LoRA y += scale·B·A·x; DoRA then y = g ⊙ (y − b) + b with g = m / ‖W + scale·B·A‖_row (fixed at load);
/// IA3 on the input (feedforward module) x ← l ⊙ x, or on the output y ← l ⊙ y (bias included, as PEFT).
/// Per-sequence adapters (<paramref name="rows"/>) add plain LoRA deltas on top.
/// </summary>
public sealed class LinearWeights(WeightMatrix w, float[]? bias)
{
    public WeightMatrix W { get; internal set; } = w;
    public float[]? Bias { get; } = bias;
    public LoraDelta? Lora { get; private set; }
    /// <summary>DoRA's per-output factor g = m / ‖W + scale·B·A‖_row, or null.</summary>
    public float[]? DoraScale { get; private set; }
    /// <summary>IA3 vector l scaling the input (In) or the output (Out), or null.</summary>
    public float[]? Ia3Input { get; set; }
    public float[]? Ia3Output { get; set; }
    /// <summary>IaSFT sparse delta S (Out, In) added beside W, or null: Y += X·Sᵀ.</summary>
    public Peft.Iasft.SparseDelta? Sparse { get; set; }
    /// <summary>iPEFT's gated adapter (scale·B·A) and its decoder layer (the gate column), or null.</summary>
    public (LoraDelta Delta, int Layer)? Ipeft { get; set; }
    /// <summary>HINT's adapter (A, B, scale) and its decoder layer: Y += scale·B·M·A·x with each row's generated M (RowAdapters.Mixers), or null.</summary>
    public (LoraDelta Delta, int Layer)? Hint { get; set; }
    public int In => W.Cols;
    public int Out => W.Rows;

    /// <summary>Attaches a LoRA (or DoRA, when the delta has a magnitude) delta.</summary>
    public void AttachLora(LoraDelta d)
    {
        Lora = d;
        DoraScale = null;
        if (d.Magnitude is not { } m) return;
        var merged = W.ToF32();
        // merged (out, in) = W + scale · B (out, r) · A (r, in); g[o] = m[o] / ‖merged[o, :]‖
        Engine.Kernels.Gemm.Sgemm(false, false, d.Out, d.In, d.Rank, d.Scale, d.B, d.Rank, d.A, d.In, 1f, merged, d.In);
        var g = new float[d.Out];
        for (int o = 0; o < d.Out; o++)
        {
            double acc = 0;
            foreach (var v in merged.AsSpan(o * d.In, d.In)) acc += (double)v * v;
            g[o] = (float)(m[o] / Math.Sqrt(acc));
        }
        DoraScale = g;
    }

    /// <summary>Y[T, Out] = adapters around X[T, In]·Wᵀ + b; <paramref name="rows"/> adds each row's own LoRA adapter.</summary>
    public void Forward(ReadOnlySpan<float> X, Span<float> Y, int T, RowAdapters? rows = null)
    {
        if (Ia3Input is { } l)
        {
            var xs = new float[T * In];
            for (int t = 0; t < T; t++) System.Numerics.Tensors.TensorPrimitives.Multiply(X.Slice(t * In, In), l, xs.AsSpan(t * In, In));
            InferenceLinear.Forward(xs, W, Bias, Y, T);
            AddAdapters(xs, Y, T, rows);
            return;
        }
        InferenceLinear.Forward(X, W, Bias, Y, T);
        AddAdapters(X, Y, T, rows);
    }

    /// <summary>Several linears of the same input in one parallel region (q/k/v; gate/up).</summary>
    public static void ForwardMany(float[] X, int T, params (LinearWeights L, float[] Y)[] products) => ForwardMany(X, T, null, products);

    public static void ForwardMany(float[] X, int T, RowAdapters? rows, params (LinearWeights L, float[] Y)[] products)
    {
        if (products.Any(p => p.L.Ia3Input != null))
        {
            foreach (var (l, y) in products) l.Forward(X, y, T, rows);
            return;
        }
        InferenceLinear.ForwardMany(X, T, products.Select(p => (p.L.W, p.L.Bias, p.Y)).ToArray());
        foreach (var (l, y) in products) l.AddAdapters(X, y, T, rows);
    }

    private void AddAdapters(ReadOnlySpan<float> X, Span<float> Y, int T, RowAdapters? rows)
    {
        if (Sparse is { } s) Engine.Kernels.SparseDeltaKernel.Forward(X, s.Index, s.Values, Y, T, Out, In);   // Y += X·Sᵀ
        if (Ipeft is { } ip && rows?.Gates is { } gates)
        {
            var gd = new float[T * Out];                                     // (T, Out) = scale·B·A·x
            AddDelta(ip.Delta, X, gd, T);
            for (int t = 0; t < T; t++)                                      // Y[t] += g[t, layer]·gd[t]
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(gd.AsSpan(t * Out, Out), gates[t * rows.GateLayers + ip.Layer], Y.Slice(t * Out, Out), Y.Slice(t * Out, Out));
        }
        if (Hint is { } h && rows?.Mixers is { } mixers)
        {
            int r = h.Delta.Rank, rr = r * r;
            var ax = new float[T * r];                                       // (T, r) = A·x
            InferenceLinear.Forward(X, WeightMatrix.FromF32(r, h.Delta.In, h.Delta.A), [], ax, T);
            var mx = new float[T * r];                                       // (T, r) = M[t]·A·x, M[t] the row's r×r matrix
            for (int t = 0; t < T; t++)
            {
                var M = mixers.AsSpan((t * rows.MixerLayers + h.Layer) * rr, rr);
                for (int i = 0; i < r; i++) mx[t * r + i] = System.Numerics.Tensors.TensorPrimitives.Dot(M.Slice(i * r, r), ax.AsSpan(t * r, r));
            }
            var bx = new float[T * Out];                                     // (T, Out) = B·M·A·x
            InferenceLinear.Forward(mx, WeightMatrix.FromF32(Out, r, h.Delta.B), [], bx, T);
            System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(bx, h.Delta.Scale, Y[..(T * Out)], Y[..(T * Out)]);
        }
        if (Lora is { } d) AddDelta(d, X, Y, T);
        if (DoraScale is { } g)
            for (int t = 0; t < T; t++)
            {
                var y = Y.Slice(t * Out, Out);
                if (Bias != null) System.Numerics.Tensors.TensorPrimitives.Subtract(y, Bias, y);
                System.Numerics.Tensors.TensorPrimitives.Multiply(y, g, y);
                if (Bias != null) System.Numerics.Tensors.TensorPrimitives.Add(y, Bias, y);
            }
        if (Ia3Output is { } l)
            for (int t = 0; t < T; t++) System.Numerics.Tensors.TensorPrimitives.Multiply(Y.Slice(t * Out, Out), l, Y.Slice(t * Out, Out));
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
        InferenceLinear.Forward(X, WeightMatrix.FromF32(d.Rank, d.In, d.A), [], ax, T);
        var bax = new float[T * d.Out];                                     // (T, Out)
        InferenceLinear.Forward(ax, WeightMatrix.FromF32(d.Out, d.Rank, d.B), [], bax, T);
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
    /// <summary>iPEFT gates of this forward, (rows, GateLayers) row-major, or null.</summary>
    public float[]? Gates { get; init; }
    public int GateLayers { get; init; }
    /// <summary>HINT's generated r×r matrices of this forward, (rows, MixerLayers, r·r) row-major, or null.</summary>
    public float[]? Mixers { get; init; }
    public int MixerLayers { get; init; }
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
/// <paramref name="Adapter"/> adds a LoRA adapter for this sequence only (on top of any attached one);
/// <paramref name="Segments"/> gives each token's segment (Data.Templating.Segment: 0 template, 1 instruction,
/// 2 input, 3 response) for the instruction-aware variants; null = every token is response text.</summary>
public sealed record SequenceChunk(KvCache Cache, int[] Tokens, int[]? Positions = null, bool AllLogits = false,
    InferenceAdapter? Adapter = null, byte[]? Segments = null);

public sealed partial class InferenceModel : IDisposable
{
    public LlamaConfig Config { get; private set; }
    public WeightMatrix Embed { get; private set; }
    public WeightMatrix LmHead { get; private set; }

    /// <summary>
    /// Appends the rows of added tokens (instruction marker tokens trained under LoRA/QLoRA: the adapter folder's
    /// added_tokens.safetensors) to the embedding and lm_head: ids [vocab_size, vocab_size + k) get
    /// <paramref name="embedRows"/> (k, hidden) and, untied, <paramref name="headRows"/>; vocab_size grows by k. The
    /// tables become float32 copies. <paramref name="firstId"/> must be today's vocab_size (the ids training gave them).
    /// </summary>
    public void AppendTokenRows(int firstId, float[] embedRows, float[]? headRows)
    {
        int V = Config.VocabSize, D = Config.HiddenSize, k = embedRows.Length / D;
        if (firstId != V) throw new InvalidDataException($"the added token rows start at id {firstId}, but the model's vocab_size is {V}");
        if (k < 1 || embedRows.Length != k * D) throw new InvalidDataException($"added token rows of {embedRows.Length} values do not fit hidden size {D}");
        if (Config.TieWordEmbeddings != (headRows == null))
            throw new InvalidDataException(Config.TieWordEmbeddings ? "the model ties lm_head to the embedding, but the added rows carry their own lm_head rows"
                : "the model's lm_head is untied, but the added rows carry no lm_head rows");
        if (InstructionAware != null || VirtualTokens > 0) throw new InvalidDataException("added token rows are appended before other variants attach");
        WeightMatrix Grow(WeightMatrix w, float[] rows)
        {
            var all = new float[(V + k) * D];
            w.ToF32().CopyTo(all, 0);
            rows.CopyTo(all, V * D);
            return WeightMatrix.FromF32(V + k, D, all);
        }
        bool tied = ReferenceEquals(LmHead, Embed);
        var embed = Grow(Embed, embedRows);
        LmHead = tied ? embed : Grow(LmHead, headRows ?? throw new InvalidDataException("untied lm_head needs rows"));
        Embed = embed;
        Config = Config with { VocabSize = V + k };
        WeightBytes = Embed.ByteLength + (ReferenceEquals(LmHead, Embed) ? 0 : LmHead.ByteLength) + Layers.Sum(l => l.Linears(0).Sum(x => x.L.W.ByteLength));
    }
    public float[] FinalNorm { get; }
    public DecoderLayerWeights[] Layers { get; }
    public IReadOnlyList<string> UnusedTensors { get; }
    /// <summary>Bytes of weights as held (bf16 checkpoints stay bf16).</summary>
    public long WeightBytes { get; private set; }
    private readonly float[] _invFreq; // RoPE inverse frequencies: the training path's (RotaryEmbedding → RopeKernel)
    private readonly CheckpointFolder? _checkpoint;

    public InferenceModel(LlamaConfig config, WeightMatrix embed, WeightMatrix lmHead, float[] finalNorm,
        DecoderLayerWeights[] layers, CheckpointFolder? owner = null, IReadOnlyList<string>? unused = null)
    {
        Config = config; Embed = embed; LmHead = lmHead; FinalNorm = finalNorm; Layers = layers;
        _checkpoint = owner; UnusedTensors = unused ?? [];
        _invFreq = new Layers.RotaryEmbedding(config).InverseFrequencies;
        WeightBytes = embed.ByteLength + (ReferenceEquals(lmHead, embed) ? 0 : lmHead.ByteLength)
            + layers.Sum(l => l.Linears(0).Sum(x => x.L.W.ByteLength));
    }

    private InferenceCompute _compute = InferenceCompute.Float32;

    /// <summary>
    /// Arithmetic of the linear layers on many tokens at once (prefill, scoring): Float32 (default; bf16 weights
    /// widened exactly), or Bf16 — activations rounded to bf16, products accumulated in float32, as PyTorch's
    /// torch_dtype=bfloat16 matmuls do, on oneDNN's bf16 dot products where the CPU has them. Norms, RoPE,
    /// attention, softmax and decode GEMVs stay float32. Reached by <c>itune generate|score --compute bf16</c>.
    /// </summary>
    public InferenceCompute Compute
    {
        get => _compute;
        set
        {
            _compute = value;
            foreach (var l in Layers)
                foreach (var (_, lin) in l.Linears(0)) lin.W.ComputeBf16 = value == InferenceCompute.Bf16;
            LmHead.ComputeBf16 = value == InferenceCompute.Bf16;
        }
    }

    /// <summary>
    /// Re-holds every linear layer and the LM head as q8_0 (ggml's blocks of 32 with a half scale, quantised as
    /// llama.cpp and our GGUF export do): 1.0625 bytes per weight in memory, decode on int8 dot products
    /// (<see cref="Engine.Kernels.Q8Gemv"/>). The embedding table stays as loaded (rows are looked up, not
    /// streamed). The float32/bf16 pages the quantised matrices came from are dropped from resident memory
    /// (the checkpoint stays mapped). Reached by <c>itune generate|score --quantize q8_0</c>; a checkpoint written
    /// by <c>itune convert --dtype q8_0</c> loads as q8_0 without this step. Adapters stay float32 beside it.
    /// </summary>
    public void QuantizeQ8_0()
    {
        for (int l = 0; l < Layers.Length; l++)
            foreach (var (name, lin) in Layers[l].Linears(l))
            {
                var old = lin.W;
                lin.W = WeightMatrix.QuantizeQ8_0(old, name);
                if (!ReferenceEquals(old, lin.W)) old.ReleaseMappedPages();
            }
        var head = LmHead;
        LmHead = WeightMatrix.QuantizeQ8_0(head, "lm_head.weight");
        if (!ReferenceEquals(head, Embed) && !ReferenceEquals(head, LmHead)) head.ReleaseMappedPages();
        WeightBytes = Embed.ByteLength + (ReferenceEquals(LmHead, Embed) ? 0 : LmHead.ByteLength) + Layers.Sum(l => l.Linears(0).Sum(x => x.L.W.ByteLength));
    }

    /// <summary>True when the linear layers hold q8_0 weights (quantised at load or read from a q8_0 checkpoint).</summary>
    public bool IsQ8 => Layers.Length > 0 && Layers[0].Q.W.IsQ8;

    /// <summary>A cache for <paramref name="capacity"/> real tokens (plus room for the virtual tokens, if any).</summary>
    public KvCache CreateCache(int capacity) => new(Config, capacity + VirtualTokens);

    /// <summary>P virtual tokens every sequence starts with (prompt or prefix tuning), 0 without.</summary>
    public int VirtualTokens { get; private set; }

    /// <summary>Positions left for a sequence's real tokens (prompt + generated): max_position_embeddings less the
    /// <see cref="VirtualTokens"/>, which sit at positions 0..P−1 (prompt and prefix tuning alike).</summary>
    public int RealPositions => Config.MaxPositionEmbeddings - VirtualTokens;

    /// <summary>Null when a prompt of <paramref name="promptTokens"/> tokens leaves room to generate at least one
    /// token; otherwise the error naming the counts (the adapter's virtual tokens included), as <c>itune generate</c>
    /// and <c>itune serve</c> report it.</summary>
    public string? PromptTooLong(int promptTokens)
    {
        if (promptTokens < RealPositions) return null;
        int maxPos = Config.MaxPositionEmbeddings;
        return VirtualTokens == 0
            ? $"the prompt has {promptTokens} tokens; this model's context is {maxPos} tokens (max_position_embeddings) and leaves no room to generate"
            : $"the prompt has {promptTokens} tokens and the adapter's {VirtualTokens} virtual tokens take {VirtualTokens} positions: "
              + $"{promptTokens + VirtualTokens} of this model's context of {maxPos} tokens (max_position_embeddings), leaving no room to generate";
    }
    private float[]? _softPrompt;            // (P, D)
    private float[][]? _prefixK, _prefixV;   // per layer (P, kvHeads·hd)

    /// <summary>Attaches a prompt-tuning soft prompt (P, hidden) or prefix-tuning prefixes (P, L·2·kv·hd, PEFT's
    /// layout: block 2l = layer l's keys, 2l+1 its values). Refuses sizes that do not fit the model.</summary>
    public void ApplyVirtualTokens(Peft.PromptLearningFile file)
    {
        var c = Config;
        int P = file.NumVirtualTokens, tok = c.NumKeyValueHeads * c.HeadDim;
        if (VirtualTokens > 0) throw new InvalidDataException("the model already has virtual tokens attached");
        if (P >= c.MaxPositionEmbeddings)
            throw new InvalidDataException($"num_virtual_tokens {P} leaves no position for real tokens (max_position_embeddings {c.MaxPositionEmbeddings})");
        if (file.IsPrefix)
        {
            if (file.Width != c.NumHiddenLayers * 2 * tok)
                throw new InvalidDataException($"prompt_embeddings rows have {file.Width} values; this model's prefixes need num_layers {c.NumHiddenLayers} × 2 × {tok}");
            _prefixK = new float[c.NumHiddenLayers][]; _prefixV = new float[c.NumHiddenLayers][];
            for (int l = 0; l < c.NumHiddenLayers; l++)
            {
                _prefixK[l] = new float[P * tok]; _prefixV[l] = new float[P * tok];
                for (int p = 0; p < P; p++)
                {
                    file.Embeddings.AsSpan((p * 2 * c.NumHiddenLayers + 2 * l) * tok, tok).CopyTo(_prefixK[l].AsSpan(p * tok, tok));
                    file.Embeddings.AsSpan((p * 2 * c.NumHiddenLayers + 2 * l + 1) * tok, tok).CopyTo(_prefixV[l].AsSpan(p * tok, tok));
                }
            }
        }
        else
        {
            if (file.Width != c.HiddenSize)
                throw new InvalidDataException($"prompt_embeddings rows have {file.Width} values; this model's hidden_size is {c.HiddenSize}");
            _softPrompt = file.Embeddings;
        }
        VirtualTokens = P;
    }

    /// <summary>Copies the prefix keys/values into an empty cache's rows 0..P−1 of every layer.</summary>
    private void FillPrefix(KvCache cache)
    {
        int P = VirtualTokens, nKv = Config.NumKeyValueHeads, hd = Config.HeadDim;
        for (int l = 0; l < _prefixK!.Length; l++)
            for (int p = 0; p < P; p++)
                for (int g = 0; g < nKv; g++)
                {
                    int dst = (g * cache.Capacity + p) * hd;
                    _prefixK[l].AsSpan((p * nKv + g) * hd, hd).CopyTo(cache.K[l].AsSpan(dst, hd));
                    _prefixV[l].AsSpan((p * nKv + g) * hd, hd).CopyTo(cache.V[l].AsSpan(dst, hd));
                }
        cache.Length = P;
    }

    /// <summary>The instruction-aware variants' weights (instruction_aware.safetensors), or null.</summary>
    public InstructionAwareWeights? InstructionAware { get; private set; }

    /// <summary>Attaches instruction-aware variants (segment embeddings, instruction gates) loaded for this model.</summary>
    public void ApplyInstructionAware(InstructionAwareWeights w)
    {
        if (InstructionAware != null) throw new InvalidDataException("the model already has instruction-aware variants attached");
        if (VirtualTokens > 0) throw new InvalidDataException("instruction-aware variants cannot be combined with prompt or prefix tuning");
        InstructionAware = w;
    }

    /// <summary>Attaches LoRA deltas to the named linears (unmerged); throws when a module does not exist or mismatches.</summary>
    public void ApplyAdapter(LoraAdapterFile adapter)
    {
        foreach (var (lin, d) in Check(adapter)) lin.AttachLora(d);
    }

    /// <summary>Checks an adapter against this model and keys its deltas by linear layer, without attaching it
    /// (for per-sequence adapters, <see cref="SequenceChunk.Adapter"/>).</summary>
    public InferenceAdapter PrepareAdapter(LoraAdapterFile adapter, string name)
    {
        if (adapter.UseDora)
            throw new InvalidDataException($"adapter \"{name}\" is DoRA (use_dora): its magnitude rescales whole rows, so it cannot be a per-sequence adapter; attach it to the model (--adapter) or merge it");
        return new InferenceAdapter(name, Check(adapter));
    }

    private Dictionary<LinearWeights, LoraDelta> Check(LoraAdapterFile adapter)
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
        return deltas;
    }

    /// <summary>Attaches IA3 vectors to the named linears (unmerged); throws when a module does not exist or mismatches.</summary>
    public void ApplyIa3(Peft.Ia3.Ia3AdapterFile adapter)
    {
        var byName = Layers.SelectMany((l, i) => l.Linears(i)).ToDictionary(x => x.Name, x => x.L);
        foreach (var (module, v) in adapter.Vectors)
        {
            if (!byName.TryGetValue(module, out var lin))
                throw new InvalidDataException($"adapter targets \"{module}\", which is not a linear layer of this model");
            int want = v.Feedforward ? lin.In : lin.Out;
            if (v.L.Length != want)
                throw new InvalidDataException($"adapter \"{module}\": ia3_l has {v.L.Length} entries, the layer's {(v.Feedforward ? "input" : "output")} has {want}");
            if (v.Feedforward) lin.Ia3Input = v.L; else lin.Ia3Output = v.L;
        }
    }

    /// <summary>Attaches IaSFT sparse deltas to the named linears (unmerged); throws when a module does not exist,
    /// a shape differs, or the base weights at the delta's positions are not the ones it was trained on.</summary>
    public void ApplySparseDeltas(Peft.Iasft.IasftAdapterFile adapter)
    {
        var byName = Layers.SelectMany((l, i) => l.Linears(i)).ToDictionary(x => x.Name, x => x.L);
        foreach (var (module, d) in adapter.Deltas)
        {
            if (!byName.TryGetValue(module, out var lin))
                throw new InvalidDataException($"IaSFT delta targets \"{module}\", which is not a linear layer of this model");
            if (d.In != lin.In || d.Out != lin.Out)
                throw new InvalidDataException($"IaSFT delta for \"{module}\" is for a {d.Out}×{d.In} weight; the layer is {lin.Out}×{lin.In}");
        }
        if (adapter.Deltas.Keys.FirstOrDefault(m => byName[m].W.IsQ8) is { } q8)
            throw new InvalidDataException($"IaSFT delta for \"{q8}\": the model holds this layer as q8_0, which has rounded the base weights the " +
                "delta checks against; load the adapter on the float32 or bf16 checkpoint (or `itune merge` it first, then `itune convert --dtype q8_0`)");
        adapter.CheckBase((m, i) => byName[m].W is { IsBf16: true } w ? Checkpoints.DTypes.Bf16ToF32(w.Bf16[i]) : byName[m].W.F32[i]);
        foreach (var (module, d) in adapter.Deltas) byName[module].Sparse = d;
    }

    /// <summary>The iPEFT gate head (W (layers, hidden), b (layers)) when an iPEFT adapter is attached.</summary>
    private Peft.Ipeft.IpeftAdapterFile? _ipeft;

    /// <summary>Whether the forward reads per-token segments (instruction-aware variants, iPEFT, IAPT, HINT); callers skip
    /// computing them otherwise.</summary>
    public bool ReadsSegments => InstructionAware != null || _ipeft != null || _iapt != null || _hint != null;

    /// <summary>Attaches an iPEFT adapter: the gate head and a gated low-rank delta per named linear; throws when the
    /// model's layers, width or a module do not fit.</summary>
    public void ApplyIpeft(Peft.Ipeft.IpeftAdapterFile adapter)
    {
        if (_iapt != null || _hint != null) throw new InvalidDataException("the model already has an instruction-conditioned adapter attached");
        if (adapter.Layers != Layers.Length || adapter.Hidden != Config.HiddenSize)
            throw new InvalidDataException($"iPEFT adapter is for {adapter.Layers} layers of width {adapter.Hidden}; this model has {Layers.Length} of width {Config.HiddenSize}");
        var byName = Layers.SelectMany((l, i) => l.Linears(i)).ToDictionary(x => x.Name, x => x.L);
        foreach (var (module, d) in adapter.Deltas)
        {
            if (!byName.TryGetValue(module, out var lin))
                throw new InvalidDataException($"adapter targets \"{module}\", which is not a linear layer of this model");
            if (d.In != lin.In || d.Out != lin.Out)
                throw new InvalidDataException($"adapter \"{module}\": A/B give [{d.Out}×{d.In}], the layer is [{lin.Out}×{lin.In}]");
        }
        foreach (var (module, d) in adapter.Deltas)
            byName[module].Ipeft = (new LoraDelta(d.A, d.B, d.Rank, d.In, d.Out, adapter.Config.Scale), d.Layer);
        _ipeft = adapter;
    }

    /// <summary>iPEFT gates g[n, l] = tanh(W_l·c_n + b_l) from the causal instruction mean c of the token embeddings X.</summary>
    private RowAdapters? WithIpeftGates(RowAdapters? adapters, float[] X, IReadOnlyList<SequenceChunk> chunks, int N)
    {
        if (_ipeft is not { } ip) return adapters;
        int D = Config.HiddenSize, L = ip.Layers;
        var C = InstructionContext(X, D, chunks, SegmentsOf(chunks, N), 0, Layers.Length + 1);   // (N, D): stage 0 (token embeddings) of the cache state the instruction-aware variants share
        var G = new float[N * L];
        InferenceLinear.Forward(C, WeightMatrix.FromF32(L, D, ip.GateW), ip.GateB, G, N);
        System.Numerics.Tensors.TensorPrimitives.Tanh(G, G);
        return new RowAdapters(adapters?.Groups ?? []) { Gates = G, GateLayers = L };
    }

    private bool _disposed;

    /// <summary>Unmaps the checkpoint; weights that live in the mapping are gone afterwards, so Forward refuses.</summary>
    public void Dispose()
    {
        _disposed = true;
        _checkpoint?.Dispose();
    }
}

/// <summary>Arithmetic of the inference linears on prompts (see <see cref="InferenceModel.Compute"/>).</summary>
public enum InferenceCompute { Float32, Bf16 }

public static class InferenceComputes
{
    /// <summary>float32 | bf16 (bfloat16 accepted); anything else names the option and the choices.</summary>
    public static InferenceCompute Parse(string? value, string what = "--compute") => (value ?? "float32").Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => InferenceCompute.Float32,
        "bf16" or "bfloat16" => InferenceCompute.Bf16,
        _ => throw new ArgumentException($"{what} '{value}': expected float32 or bf16"),
    };
}
