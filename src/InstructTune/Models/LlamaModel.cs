// The trainable Llama-family decoder (Llama, Mistral, Qwen2, SmolLM, TinyLlama) with Hugging Face names:
//
//   model.embed_tokens.weight                       (vocab, hidden)
//   model.layers.N.input_layernorm.weight           (hidden)
//   model.layers.N.self_attn.{q,k,v,o}_proj.weight  (out, in) [+ .bias with attention_bias / Qwen2 qkv bias]
//   model.layers.N.post_attention_layernorm.weight  (hidden)
//   model.layers.N.mlp.{gate,up,down}_proj.weight
//   model.norm.weight                               (hidden)
//   lm_head.weight                                  (vocab, hidden) — the same Parameter as embed_tokens when tied
//
// Forward (training or scoring) runs the whole batch through the tape:
//   x = embed(ids)                                  (B·T, hidden)
//   for each layer: x = x + attn(norm(x)); x = x + mlp(norm(x))
//   logits = lm_head(norm(x))                       (B·T, vocab)
//   loss = CE(logits[t], labels[t+1])               (HF shift: labels are aligned with input_ids)
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Models.InstructionAware;
using InstructTune.Models.Layers;

namespace InstructTune.Models;

/// <summary>
/// One batch: ids (B, T) and optional padding mask (1 = token, 0 = pad), position ids (default 0..T−1),
/// document ids for packed sequences (block-diagonal causal mask) and labels (B, T) aligned with the ids as in
/// Hugging Face (the model shifts them: position t is scored on labels[t+1]; −100 = not learned).
/// </summary>
public sealed record LlamaBatch(IntTensor InputIds)
{
    public IntTensor? AttentionMask { get; init; }
    public IntTensor? PositionIds { get; init; }
    public IntTensor? DocumentIds { get; init; }
    public IntTensor? Labels { get; init; }
    /// <summary>(B, T) segment id per token (0 template/system, 1 instruction, 2 input, 3 response; Data.Templating.Segment),
    /// for the instruction-aware variants and the instruction-conditioned PEFT methods (<see cref="InstructionAware.InstructionSpans"/>).</summary>
    public IntTensor? Segments { get; init; }
}

public enum LossReduction { Mean, Sum }

public sealed record LlamaForwardOptions
{
    /// <summary>Return logits (B, T, vocab) in the output (the loss is computed from them either way).</summary>
    public bool ReturnLogits { get; init; } = true;
    /// <summary>Mean over learned tokens (torch's default) or the sum, to normalise across micro-batches by LossTokens.</summary>
    public LossReduction Reduction { get; init; } = LossReduction.Mean;
    public float LabelSmoothing { get; init; }
    /// <summary>Recompute each decoder layer in backward instead of keeping its activations.</summary>
    public bool CheckpointLayers { get; init; }
    /// <summary>
    /// NEFTune (Jain et al., 2023): while training, add uniform noise U(−1, 1)·alpha/√(T·hidden) to the token
    /// embeddings (T = sequence length). 0 = off; never applied without a recording tape (evaluation).
    /// </summary>
    public float NeftuneAlpha { get; init; }
    /// <summary>The generator NEFTune draws from (kept by the trainer so a resumed run draws the same noise).</summary>
    public Rng? NoiseRng { get; init; }
    /// <summary>Stop after the final norm: the output's <see cref="LlamaOutput.Hidden"/> is set; no logits, no loss
    /// (a value head reads the hidden states, e.g. the reward model's).</summary>
    public bool HiddenOnly { get; init; }
}

/// <summary>Logits (B, T, vocab) when asked; Loss (scalar) when labels were given; LossTokens = tokens that count.</summary>
public sealed record LlamaOutput(Tensor? Logits, Tensor? Loss, int LossTokens)
{
    /// <summary>The final-norm hidden states (B·T, hidden), only with <see cref="LlamaForwardOptions.HiddenOnly"/>.</summary>
    public Tensor? Hidden { get; init; }
}

/// <summary>The inner "model" module: embeddings, decoder layers, final norm.</summary>
public sealed class LlamaBackbone : Module
{
    public LlamaBackbone(LlamaConfig c)
    {
        RegisterModule("embed_tokens", new Embedding(c.VocabSize, c.HiddenSize));
        RegisterModule("layers", new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new LlamaDecoderLayer(c))));
        RegisterModule("norm", new RmsNorm(c.HiddenSize, (float)c.RmsNormEps));
    }

    public Embedding EmbedTokens => (Embedding)Child("embed_tokens");
    public ModuleList<LlamaDecoderLayer> Layers => (ModuleList<LlamaDecoderLayer>)Child("layers");
    public RmsNorm Norm => (RmsNorm)Child("norm");
}

public sealed class LlamaModel : Module
{
    public LlamaConfig Config { get; }
    public RotaryEmbedding Rotary { get; }

    public LlamaModel(LlamaConfig config)
    {
        Validate(config);
        Config = config;
        Rotary = new RotaryEmbedding(config);
        var backbone = RegisterModule("model", new LlamaBackbone(config));
        RegisterModule("lm_head", config.TieWordEmbeddings
            ? new Linear(backbone.EmbedTokens.Weight)
            : new Linear(config.HiddenSize, config.VocabSize));
    }

    public LlamaBackbone Backbone => (LlamaBackbone)Child("model");

    /// <summary>The attached virtual tokens (prompt or prefix tuning), or null.</summary>
    public IVirtualTokens? VirtualTokens { get; private set; }

    /// <summary>Registers a soft prompt or a key/value prefix as a child module (its parameters then train and save
    /// with the model's). One per model.</summary>
    public void AttachVirtualTokens(string name, Module module)
    {
        if (VirtualTokens != null) throw new InvalidOperationException("the model already has virtual tokens attached");
        if (module is not (ISoftPrompt or IKvPrefix)) throw new ArgumentException($"{module.GetType().Name} is neither a soft prompt nor a key/value prefix");
        RegisterModule(name, module);
        VirtualTokens = (IVirtualTokens)module;
    }
    /// <summary>The attached instruction conditioner (iPEFT's gate head), or null.</summary>
    public IInstructionConditioner? Conditioner { get; private set; }

    /// <summary>Registers a module that reads the instruction once per forward (its parameters train and save with
    /// the model's). One per model.</summary>
    public void AttachConditioner(string name, Module module)
    {
        if (Conditioner != null) throw new InvalidOperationException("the model already has an instruction conditioner attached");
        RegisterModule(name, module);
        Conditioner = (IInstructionConditioner)module;
    }

    public IUnaryModule LmHead => Unary("lm_head");

    /// <summary>Trainable rows of added tokens over a frozen embedding (marker tokens under LoRA/QLoRA), or null.</summary>
    public TrainableTokenRows? TokenRows { get; private set; }

    /// <summary>Makes the rows of ids [firstId, vocab) trainable while the embedding and lm_head stay frozen (child
    /// "added_tokens"; TrainableTokenRows.cs). Attach after the PEFT freeze.</summary>
    public TrainableTokenRows AttachTokenRows(int firstId)
    {
        if (TokenRows != null) throw new InvalidOperationException("the model already has trainable token rows");
        return TokenRows = RegisterModule(TrainableTokenRows.Name, new TrainableTokenRows(this, firstId));
    }

    /// <summary>ids → token embeddings (…, hidden), through the trainable token rows when attached.</summary>
    public Tensor EmbedIds(IntTensor ids) => TokenRows is { } r
        ? Ops.Embedding(Ops.OverrideRows(Backbone.EmbedTokens.Weight, r.FirstId, r.Embed), ids)
        : Backbone.EmbedTokens.Forward(ids);

    /// <summary>Final hidden states (N, hidden) → logits (N, vocab), through the trainable token rows when attached.</summary>
    public Tensor HeadLogits(Tensor x)
    {
        if (TokenRows is not { } r) return LmHead.Forward(x);
        var table = r.Head is { } h ? Ops.OverrideRows(((Linear)LmHead).Weight, r.FirstId, h)
            : Ops.OverrideRows(Backbone.EmbedTokens.Weight, r.FirstId, r.Embed);
        return Ops.Linear(x, table);
    }

    /// <summary>The instruction-aware variants (model.instruction_aware), or null (the plain model).</summary>
    public InstructionAwareModule? InstructionAware { get; private set; }

    /// <summary>Adds the instruction-aware variants' parameters (child "instruction_aware", trainable, at their
    /// identity initial values); forwards then need segment ids.</summary>
    public InstructionAwareModule AttachInstructionAware(InstructionAwareOptions options)
    {
        if (InstructionAware != null) throw new InvalidOperationException("the model already has instruction-aware variants attached");
        InstructionAware = RegisterModule(InstructionAwareModule.Name, new InstructionAwareModule(Config, options));
        if (options.RepresentationHead)   // the representation loss's frozen target encoder (InstructionHeads.cs)
        {
            InstructionAware.RepresentationTable = Backbone.EmbedTokens.Weight.ToArray();   // (V, D) float32 copy, as it is now
        }
        if (InstructionAware.InstructionEmbedding is { } ie) ie.Load(Backbone.EmbedTokens.Weight.Span);   // a copy: identity at start
        return InstructionAware;
    }

    /// <summary>
    /// Random initialisation as transformers' LlamaPreTrainedModel: weights ~ N(0, std), biases 0, norms 1.
    /// Deterministic for a seed (parameters are filled in NamedParameters order).
    /// </summary>
    public void InitializeWeights(ulong seed, float std = 0.02f)
    {
        var rng = new Rng(seed);
        foreach (var (name, p) in NamedParameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.Span.Fill(1f);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.Span.Clear();
            else rng.Normal(p.Span, 0f, std);
        }
    }

    /// <summary>Runs the batch; records on the current tape when one is open (training), else just computes.</summary>
    public LlamaOutput Forward(LlamaBatch batch, LlamaForwardOptions? options = null)
    {
        options ??= new LlamaForwardOptions();
        int B0 = batch.InputIds.Shape[0], T0 = batch.InputIds.Shape.Length == 2 ? batch.InputIds.Shape[1] : 0;
        int[]? keptRows = null;
        if (Conditioner is ITaskConditioner tasks) (batch, keptRows) = tasks.Begin(this, batch);   // HINT: instructions out, encoded once per task
        var ids = batch.InputIds;
        if (ids.Shape.Length != 2) throw new ArgumentException($"LlamaModel.Forward: input_ids must be (B, T), got {Tensor.ShapeString(ids.Shape)}");
        int B = ids.Shape[0], T = ids.Shape[1], N = B * T;
        CheckSame("attention_mask", batch.AttentionMask, ids);
        CheckSame("position_ids", batch.PositionIds, ids);
        CheckSame("document_ids", batch.DocumentIds, ids);
        CheckSame("labels", batch.Labels, ids);
        CheckSame("segments", batch.Segments, ids);

        var positions = batch.PositionIds?.Data ?? DefaultPositions(B, T);
        var vt = VirtualTokens is { Enabled: true } v ? v : null;
        int P = vt?.Count ?? 0;
        if (P > 0) CheckOneSequencePerRow(batch.DocumentIds?.Data, B, T);
        var soft = vt as ISoftPrompt;
        int Tx = soft != null ? P + T : T;                          // rows that flow through the layers
        var (cos, sin) = Rotary.Tables(VirtualPositions(positions, B, T, P, soft != null)); // (B·Tx, hd/2) each
        var mask = new AttentionMask
        {
            Causal = true,
            Window = Config.SlidingWindow ?? 0,
            KeyValid = P > 0 ? PrefixRows(batch.AttentionMask?.Data, B, T, P, _ => 1) : batch.AttentionMask?.Data,
            DocIds = P > 0 ? PrefixRows(batch.DocumentIds?.Data, B, T, P, first => first) : batch.DocumentIds?.Data,
        };
        // Instruction spans cover the real rows only: with a soft prompt in front they are not offered to layers.
        var ctx = new LlamaLayerContext(B, Tx, cos, sin, mask) { Instruction = soft == null ? InstructionSpans.From(batch) : null };
        IReadOnlyList<(Tensor K, Tensor V)>? prefixes = null;
        if (vt is IKvPrefix kv)
        {
            if (options.CheckpointLayers) throw new ArgumentException("prefix tuning does not support activation checkpointing (training.activation_checkpointing)");
            prefixes = kv.LayerPrefixes();
        }

        var x = EmbedIds(ids);                                      // (B, T, hidden)
        x = Ops.Reshape(x, N, Config.HiddenSize);                  // (B·T, hidden)
        Conditioner?.Prepare(x, ctx.Instruction);                  // iPEFT: gates, IAPT: prompts, from the base's instruction embeddings
        if (InstructionAware?.InstructionEmbedding != null && ctx.Instruction is { } sp)
            x = InstructionAware.SwapInstructionRows(x, ids, sp);   // instruction tokens: their own table (inference: the same order)
        var prompts = Conditioner as IInstructionPrompts;
        if (prompts != null && options.CheckpointLayers)
            throw new ArgumentException("IAPT does not support activation checkpointing (training.activation_checkpointing): its prompts enter every layer from outside the checkpoint");
        if (options.NeftuneAlpha > 0 && options.NoiseRng != null && Tape.IsRecording)
        {
            float magnitude = options.NeftuneAlpha / MathF.Sqrt((float)T * Config.HiddenSize);
            var noise = Tensor.Empty([N, Config.HiddenSize]);
            options.NoiseRng.Uniform(noise.Span, -magnitude, magnitude);
            x = Ops.Add(x, noise);                                  // a constant: no gradient flows into it
        }
        var ia = InstructionAware;
        var spans = ctx.Instruction;
        if (ia != null)
        {
            if (spans == null)
                throw new ArgumentException(P > 0 ? "model.instruction_aware cannot be combined with prompt tuning (training.method)"
                    : "model.instruction_aware needs segment ids (LlamaBatch.Segments): the data pipeline gives them per token");
            x = ia.AddSegments(x, spans);                               // (B·T, hidden)
            if (ia.Fusion is { } fusion) x = fusion.Forward(this, x, positions, spans, options.CheckpointLayers); // two-stream fusion
        }
        if (soft != null) x = Ops.PrependRows(soft.Embeddings(), x, B); // (B·(P+T), hidden)
        var layers = Backbone.Layers;
        for (int l = 0; l < layers.Count; l++)
        {
            var layer = layers[l];
            var lctx = prefixes == null ? ctx : ctx with { PrefixK = prefixes[l].K, PrefixV = prefixes[l].V };
            if (prompts?.Layer(l) is { } lp) lctx = lctx with { Prompts = lp };
            if (ia?.KeyBias(l, spans!) is { } kb) lctx = lctx with { KeyBias = kb };   // instruction-biased attention
            x = options.CheckpointLayers ? Checkpoint.Run(h => layer.Forward(h, lctx), x) : layer.Forward(x, lctx);
            if (ia != null) x = ia.AfterLayer(l, x, spans!);            // (B·T, hidden): instruction gate, if any
        }
        if (ia?.Cot is { } cot) x = cot.Forward(x);                 // (B·T, hidden): chain-of-thought pathways
        if (soft != null) x = Ops.GatherRows(x, RealRows(B, T, P)); // (B·T, hidden): logits only for real tokens
        x = Backbone.Norm.Forward(x);
        if (options.HiddenOnly) return new LlamaOutput(null, null, 0) { Hidden = x };   // (B·T, hidden)
        var logits = HeadLogits(x);                                 // (B·T, vocab)

        Tensor? loss = null;
        int count = 0;
        if (batch.Labels != null)
        {
            var targets = ShiftedTargets(batch.Labels.Data, B, T);  // target of position t = labels[t+1]
            var sum = Ops.CrossEntropySum(logits, targets, out count, options.LabelSmoothing);
            loss = options.Reduction == LossReduction.Sum ? sum : Ops.Scale(sum, count == 0 ? 0f : 1f / count);
        }
        if (keptRows != null && options.ReturnLogits)             // HINT: back to the input's rows; taken-out tokens get 0
        {
            var padded = Ops.PrependRows(Tensor.Zeros(1, Config.VocabSize), logits, 1);   // row 0 = zeros
            logits = Ops.GatherRows(padded, keptRows.Select(r => r + 1).ToArray());
            (B, T) = (B0, T0);
        }
        return new LlamaOutput(options.ReturnLogits ? Ops.Reshape(logits, B, T, Config.VocabSize) : null, loss, count);
    }

    /// <summary>targets[b, t] = labels[b, t+1]; the last position of each row predicts nothing (−100).</summary>
    public static int[] ShiftedTargets(ReadOnlySpan<int> labels, int B, int T)
    {
        var t = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            for (int i = 0; i < T - 1; i++) t[b * T + i] = labels[b * T + i + 1];
            t[b * T + T - 1] = CrossEntropyKernel.IgnoreIndex;
        }
        return t;
    }

    /// <summary>Positions with P virtual tokens: real tokens move to P + their position; a soft prompt's own rows take
    /// 0..P−1 in front of each sequence (prefix keys carry no rotation).</summary>
    private static int[] VirtualPositions(int[] positions, int B, int T, int P, bool withPromptRows)
    {
        if (P == 0) return positions;
        int Tx = withPromptRows ? P + T : T, off = withPromptRows ? P : 0;
        var p = new int[B * Tx];
        for (int b = 0; b < B; b++)
        {
            for (int i = 0; i < off; i++) p[b * Tx + i] = i;
            for (int t = 0; t < T; t++) p[b * Tx + off + t] = positions[b * T + t] + P;
        }
        return p;
    }

    /// <summary>A (B, T) mask with P entries in front of each row: value(first entry of the row).</summary>
    private static int[]? PrefixRows(int[]? rows, int B, int T, int P, Func<int, int> value)
    {
        if (rows == null) return null;
        var r = new int[B * (P + T)];
        for (int b = 0; b < B; b++)
        {
            r.AsSpan(b * (P + T), P).Fill(value(rows[b * T]));
            rows.AsSpan(b * T, T).CopyTo(r.AsSpan(b * (P + T) + P, T));
        }
        return r;
    }

    private static int[] RealRows(int B, int T, int P)
    {
        var rows = new int[B * T];
        for (int b = 0; b < B; b++) for (int t = 0; t < T; t++) rows[b * T + t] = b * (P + T) + P + t;
        return rows;
    }

    /// <summary>Virtual tokens go in front of one sequence; a packed row (several documents) would share them.</summary>
    private static void CheckOneSequencePerRow(int[]? docs, int B, int T)
    {
        if (docs == null) return;
        for (int b = 0; b < B; b++)
            for (int t = 1; t < T; t++)
                if (docs[b * T + t] >= 0 && docs[b * T + t] != docs[b * T])
                    throw new ArgumentException("prompt and prefix tuning put their virtual tokens in front of each sequence: a packed row holds several; set data.pack: false");
    }

    private static int[] DefaultPositions(int B, int T)
    {
        var p = new int[B * T];
        for (int b = 0; b < B; b++) for (int t = 0; t < T; t++) p[b * T + t] = t;
        return p;
    }

    private static void CheckSame(string name, IntTensor? t, IntTensor ids)
    {
        if (t != null && !t.Shape.AsSpan().SequenceEqual(ids.Shape))
            throw new ArgumentException($"LlamaModel.Forward: {name} {Tensor.ShapeString(t.Shape)} does not match input_ids {Tensor.ShapeString(ids.Shape)}");
    }

    private static void Validate(LlamaConfig c)
    {
        if (c.HiddenSize <= 0 || c.NumAttentionHeads <= 0 || c.NumKeyValueHeads <= 0 || c.NumHiddenLayers < 0 || c.VocabSize <= 0 || c.IntermediateSize <= 0)
            throw new ArgumentException($"LlamaConfig: sizes must be positive ({c})");
        if (c.NumAttentionHeads % c.NumKeyValueHeads != 0)
            throw new ArgumentException($"LlamaConfig: num_attention_heads {c.NumAttentionHeads} is not a multiple of num_key_value_heads {c.NumKeyValueHeads}");
        if (c.HeadDim % 2 != 0) throw new ArgumentException($"LlamaConfig: head_dim {c.HeadDim} must be even for RoPE");
    }
}
