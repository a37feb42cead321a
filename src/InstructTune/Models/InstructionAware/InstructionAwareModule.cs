// The instruction-aware variants' parameters (model.instruction_aware in the recipe), one child module
// "instruction_aware" of LlamaModel, so they train and checkpoint with the model while the base keeps its HF names:
//
//   instruction_aware.segment_embeddings.weight   (4, hidden)        zero at init
//       x_t = embed(id_t) + E_seg[segment_t]                          added to the token embeddings
//   instruction_aware.gates.L.gate_h.weight      (hidden, hidden)   zero      W_g = [W_h | W_c]
//   instruction_aware.gates.L.gate_c.weight      (hidden, hidden)   zero
//   instruction_aware.gates.L.gate.bias          (hidden)           −4        σ(−4) = 0.018: the gate starts near zero
//   instruction_aware.gates.L.scale              (hidden)           zero      s
//       after decoder layer L, with c_t the causal instruction mean of that layer's output (InstructionSpans):
//       h = h + σ(W_h h + W_c c + b) ⊙ (s ⊙ c)
//   instruction_aware.attention_bias.L           (heads)            zero      β, per decoder layer L
//       instruction-biased attention: s_ij = q_i·k_j/√hd + β_h·[segment_j = instruction] (keys of the instruction
//       segment of the query's own document; GQA, sliding window, packing and the KV cache as without)
//
// s is the one departure from the seed's h + σ(W_g[h; c]) ⊙ c: with s = 0 the model starts as exactly the base model
// (logits bit-identical, also under the KV cache), which a near-zero gate alone cannot give; s learns first (its
// gradient is σ·c·dh) and then the gate opens. Saved in instruction_aware.safetensors by these names.
//
//   instruction_aware.fusion.{x_proj,c_proj}.weight (hidden, hidden) zero, .bias (hidden) zero: two-stream fusion
//       (TwoStreamFusion.cs; two_stream_layers = K: the base model's first K layers run over the instruction alone)
//   instruction_aware.task_head.{weight (tasks, hidden), bias}, instruction_aware.representation_head.{weight (hidden,
//       hidden), bias}: zero; the dual-head and instruction-representation losses (InstructionHeads.cs; training only)
//   instruction_aware.cot.{path1..3.weight/bias, out_1..3.weight}: chain-of-thought pathways (CotPathways.cs)
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;

namespace InstructTune.Models.InstructionAware;

/// <summary>Which variants a model carries (recorded in instructtune.json as "instruction_aware").</summary>
public sealed record InstructionAwareOptions
{
    /// <summary>A learned (4, hidden) segment embedding added to the token embeddings.</summary>
    public bool SegmentEmbeddings { get; init; }
    /// <summary>Decoder layers (0-based) followed by an instruction gate.</summary>
    public IReadOnlyList<int> GateLayers { get; init; } = [];
    public float GateBiasInit { get; init; } = -4f;
    /// <summary>Two-stream fusion: the base model's first K decoder layers run over the instruction tokens alone
    /// (the instruction stream) and fused into the input embeddings; 0 = off.</summary>
    public int TwoStreamLayers { get; init; }
    /// <summary>A learned per-layer, per-head bias on the attention scores of instruction keys.</summary>
    public bool BiasedAttention { get; init; }
    /// <summary>A separate (vocab, hidden) embedding table for instruction-segment tokens, a copy of the base table at start.</summary>
    public bool InstructionEmbedding { get; init; }
    /// <summary>Classes of the dual-head task classifier over the pooled instruction representation; 0 = none.</summary>
    public int TaskClasses { get; init; }
    /// <summary>The projection head of the instruction-representation loss.</summary>
    public bool RepresentationHead { get; init; }
    /// <summary>The temperature head and the range its predictions are clamped to at use (TemperatureHead.cs), or null.</summary>
    public (float Min, float Max)? TemperatureRange { get; init; }

    /// <summary>Width r of each of the three chain-of-thought pathways over the final hidden states; 0 = off.</summary>
    public int CotWidth { get; init; }
    /// <summary>Seed of the pathways' random input projections (training.seed).</summary>
    public ulong Seed { get; init; }

    public bool Any => SegmentEmbeddings || InstructionEmbedding || GateLayers.Count > 0 || TwoStreamLayers > 0 || TaskClasses > 0 || RepresentationHead || BiasedAttention || CotWidth > 0
        || TemperatureRange != null;
}

/// <summary>One instruction gate (module "instruction_aware.gates.L").</summary>
public sealed class InstructionGate : Module
{
    public Parameter GateH { get; }
    public Parameter GateC { get; }
    public Parameter Bias { get; }
    public Parameter Scale { get; }

    public InstructionGate(int hidden, float biasInit)
    {
        GateH = RegisterModule("gate_h", new Holder(new Parameter(hidden, hidden))).Weight;
        GateC = RegisterModule("gate_c", new Holder(new Parameter(hidden, hidden))).Weight;
        var g = RegisterModule("gate", new BiasHolder(new Parameter(hidden)));
        Bias = g.Bias;
        Bias.Span.Fill(biasInit);
        Scale = RegisterParameter("scale", new Parameter(hidden));
    }

    /// <summary>The mean gate value of the last forward (per-layer statistics for the logs).</summary>
    public double LastMeanGate { get; private set; }

    /// <summary>h (N, D), c (N, D) → h + σ(W_h h + W_c c + b) ⊙ (s ⊙ c).</summary>
    public Tensor Forward(Tensor h, Tensor c)
    {
        var z = Ops.Add(Ops.Linear(h, GateH, Bias), Ops.Linear(c, GateC));  // (N, D)
        var g = Ops.Sigmoid(z);                                              // (N, D)
        LastMeanGate = Mean(g.Span);
        return Ops.Add(h, Ops.Mul(g, Ops.MulColumns(c, Scale)));             // (N, D)
    }

    private static double Mean(ReadOnlySpan<float> x) { double s = 0; foreach (var v in x) s += v; return x.Length == 0 ? 0 : s / x.Length; }

    private sealed class Holder : Module { public Parameter Weight { get; } public Holder(Parameter w) => Weight = RegisterParameter("weight", w); }
    private sealed class BiasHolder : Module { public Parameter Bias { get; } public BiasHolder(Parameter b) => Bias = RegisterParameter("bias", b); }
}

public sealed class InstructionAwareModule : Module
{
    public const string Name = "instruction_aware";
    public InstructionAwareOptions Options { get; }
    public Parameter? SegmentEmbeddings { get; }
    /// <summary>The instruction tokens' own embedding table (vocab, hidden), or null; LlamaModel.AttachInstructionAware
    /// copies the base table into it.</summary>
    public Parameter? InstructionEmbedding { get; }
    /// <summary>Gate after decoder layer L, or absent.</summary>
    public IReadOnlyDictionary<int, InstructionGate> Gates { get; }
    /// <summary>Two-stream fusion (module "instruction_aware.fusion"), or null.</summary>
    public TwoStreamFusion? Fusion { get; }
    /// <summary>β of decoder layer l (heads), zero at init; null without biased attention.</summary>
    public IReadOnlyList<Parameter>? AttentionBias { get; }
    /// <summary>The dual head (task classifier), or null.</summary>
    public LinearHead? TaskHead { get; }
    /// <summary>The instruction-representation projection, or null; its target encoder's table: <see cref="RepresentationTable"/>.</summary>
    public LinearHead? RepresentationHead { get; }
    /// <summary>The temperature head (weight (1, D), bias (1)), or null.</summary>
    public LinearHead? TemperatureHead { get; }
    /// <summary>Chain-of-thought pathways after the last decoder layer, or null.</summary>
    public CotPathways? Cot { get; }
    /// <summary>The frozen token-embedding table (V, D) the representation loss encodes instructions with: a float32
    /// copy taken by <see cref="LlamaModel.AttachInstructionAware"/> (training starts there), so it stays fixed.</summary>
    public float[]? RepresentationTable { get; internal set; }

    public InstructionAwareModule(LlamaConfig c, InstructionAwareOptions o)
    {
        Options = o;
        foreach (int l in o.GateLayers)
            if (l < 0 || l >= c.NumHiddenLayers)
                throw new ArgumentException($"instruction gate layer {l} is outside the model's layers [0, {c.NumHiddenLayers})");
        if (o.GateLayers.Distinct().Count() != o.GateLayers.Count) throw new ArgumentException("instruction gate layers repeat");
        if (o.SegmentEmbeddings)
            SegmentEmbeddings = RegisterModule("segment_embeddings", new SegmentTable(InstructionSpans.Count, c.HiddenSize)).Weight;
        if (o.InstructionEmbedding)
            InstructionEmbedding = RegisterModule("instruction_embedding", new SegmentTable(c.VocabSize, c.HiddenSize)).Weight;
        var gates = new Dictionary<int, InstructionGate>();
        if (o.GateLayers.Count > 0)
        {
            var holder = RegisterModule("gates", new GateList());
            foreach (int l in o.GateLayers.Order()) gates[l] = holder.Add(l, new InstructionGate(c.HiddenSize, o.GateBiasInit));
        }
        Gates = gates;
        if (o.TwoStreamLayers < 0 || o.TwoStreamLayers > c.NumHiddenLayers)
            throw new ArgumentException($"two_stream_layers {o.TwoStreamLayers} is outside [0, {c.NumHiddenLayers}] (the model's layers)");
        if (o.TwoStreamLayers > 0) Fusion = RegisterModule(TwoStreamFusion.Name, new TwoStreamFusion(c.HiddenSize, o.TwoStreamLayers));
        if (o.BiasedAttention)
        {
            var holder = RegisterModule("attention_bias", new BiasList());
            AttentionBias = [.. Enumerable.Range(0, c.NumHiddenLayers).Select(l => holder.Add(l, c.NumAttentionHeads))];
        }
        if (o.TaskClasses > 0) TaskHead = RegisterModule(InstructionHeads.TaskHeadName, new LinearHead(o.TaskClasses, c.HiddenSize));
        if (o.CotWidth < 0) throw new ArgumentException($"cot_width {o.CotWidth} must be ≥ 0");
        if (o.CotWidth > 0) Cot = RegisterModule(CotPathways.Name, new CotPathways(c.HiddenSize, o.CotWidth, o.Seed));
        if (o.RepresentationHead) RepresentationHead = RegisterModule(InstructionHeads.RepresentationHeadName, new LinearHead(c.HiddenSize, c.HiddenSize));
        if (o.TemperatureRange is { } range)
        {
            if (!(range.Min > 0 && range.Max >= range.Min)) throw new ArgumentException($"temperature range [{range.Min}, {range.Max}] must satisfy 0 < min ≤ max");
            TemperatureHead = RegisterModule(global::InstructTune.Models.InstructionAware.TemperatureHead.Name, global::InstructTune.Models.InstructionAware.TemperatureHead.Create(c.HiddenSize, range));
        }
    }

    /// <summary>Layer l's key bias for LlamaLayerContext: β (heads) and the instruction keys (B·T), or null.</summary>
    public (Tensor HeadBias, byte[] KeyFlags)? KeyBias(int l, InstructionSpans spans) =>
        AttentionBias == null ? null : (AttentionBias[l], spans.Select);

    /// <summary>x (N, D) token embeddings → E_i[id] on instruction tokens, x elsewhere (the instruction embedding), or x.</summary>
    public Tensor SwapInstructionRows(Tensor x, IntTensor ids, InstructionSpans spans)
    {
        if (InstructionEmbedding == null) return x;
        int N = x.Size(0);
        var keep = Tensor.Empty([N]); var take = Tensor.Empty([N]);
        for (int n = 0; n < N; n++) { take.Span[n] = spans.Select[n]; keep.Span[n] = 1 - spans.Select[n]; }
        var xi = Ops.Reshape(Ops.Embedding(InstructionEmbedding, ids), N, x.Size(1));   // (N, D)
        return Ops.Add(Ops.MulRows(x, keep), Ops.MulRows(xi, take));                     // exact: x·1 + E_i·0, x·0 + E_i·1
    }

    /// <summary>x (N, D) token embeddings → x + E_seg[segment].</summary>
    public Tensor AddSegments(Tensor x, InstructionSpans spans) =>
        SegmentEmbeddings == null ? x : Ops.Add(x, Ops.Embedding(SegmentEmbeddings, spans.SegmentIds));

    /// <summary>After decoder layer l: the gate's output, or x unchanged.</summary>
    public Tensor AfterLayer(int l, Tensor x, InstructionSpans spans) =>
        Gates.TryGetValue(l, out var g) ? g.Forward(x, spans.CausalMean(x)) : x;

    private sealed class SegmentTable : Module { public Parameter Weight { get; } public SegmentTable(int n, int d) => Weight = RegisterParameter("weight", new Parameter(n, d)); }
    private sealed class BiasList : Module { public Parameter Add(int l, int heads) => RegisterParameter(l.ToString(System.Globalization.CultureInfo.InvariantCulture), new Parameter(heads)); }
    private sealed class GateList : Module { public InstructionGate Add(int l, InstructionGate g) => RegisterModule(l.ToString(System.Globalization.CultureInfo.InvariantCulture), g); }
}
