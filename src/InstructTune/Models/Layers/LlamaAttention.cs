// Llama self-attention (module "self_attn"): q/k/v/o projections, RoPE on q and k, grouped-query causal
// attention (query head h reads kv head h / (heads / kvHeads)), optional q/k/v(/o) biases, sliding window.
// The projections are children looked up by name on every call, so an adapter can wrap them (ReplaceModule).
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;

namespace InstructTune.Models.Layers;

/// <summary>Per-batch inputs every layer shares: sizes, RoPE tables and the attention mask (over PrefixK's rows + T keys
/// when the layer has a key/value prefix, prefix tuning).</summary>
public sealed record LlamaLayerContext(int B, int T, Tensor Cos, Tensor Sin, AttentionMask Mask)
{
    /// <summary>(P, KV·hd) keys and values seen by every sequence ahead of its own, or null.</summary>
    public Tensor? PrefixK { get; init; }
    public Tensor? PrefixV { get; init; }
    /// <summary>Where the instruction sits (from LlamaBatch.Segments), or null when the batch carries no segments.</summary>
    public InstructionAware.InstructionSpans? Instruction { get; init; }
    /// <summary>IAPT: this layer's per-example prompts, attended beside the sequence with their own softmax, or null.</summary>
    public InstructionPrompts? Prompts { get; init; }
    /// <summary>Instruction-biased attention of this layer: β (heads) added to the scores of flagged keys (B·T), or null.</summary>
    public (Tensor HeadBias, byte[] KeyFlags)? KeyBias { get; init; }
}

public sealed class LlamaAttention : Module
{
    public int Heads { get; }
    public int KvHeads { get; }
    public int HeadDim { get; }

    public LlamaAttention(LlamaConfig c)
    {
        Heads = c.NumAttentionHeads; KvHeads = c.NumKeyValueHeads; HeadDim = c.HeadDim;
        bool qkvBias = c.AttentionBias || c.QkvBias;
        RegisterModule("q_proj", new Linear(c.HiddenSize, Heads * HeadDim, qkvBias));
        RegisterModule("k_proj", new Linear(c.HiddenSize, KvHeads * HeadDim, qkvBias));
        RegisterModule("v_proj", new Linear(c.HiddenSize, KvHeads * HeadDim, qkvBias));
        RegisterModule("o_proj", new Linear(Heads * HeadDim, c.HiddenSize, c.AttentionBias));
    }

    public IUnaryModule QProj => Unary("q_proj");
    public IUnaryModule KProj => Unary("k_proj");
    public IUnaryModule VProj => Unary("v_proj");
    public IUnaryModule OProj => Unary("o_proj");

    /// <summary>h (B·T, hidden) → (B·T, hidden).</summary>
    public Tensor Forward(Tensor h, LlamaLayerContext ctx)
    {
        var q = QProj.Forward(h);                                   // (B·T, H·hd)
        var k = KProj.Forward(h);                                   // (B·T, KV·hd)
        var v = VProj.Forward(h);                                   // (B·T, KV·hd)
        q = Ops.Rope(q, ctx.Cos, ctx.Sin, Heads, HeadDim);
        k = Ops.Rope(k, ctx.Cos, ctx.Sin, KvHeads, HeadDim);
        int Tk = ctx.T;
        if (ctx.PrefixK is { } pk)
        {
            k = Ops.PrependRows(pk, k, ctx.B);                      // (B·(P+T), KV·hd): the prefix as a past cache
            v = Ops.PrependRows(ctx.PrefixV!, v, ctx.B);
            Tk += pk.Size(0);
        }
        var dims = new AttentionDims(ctx.B, ctx.T, Tk, Heads, KvHeads, HeadDim);
        var a = ctx.KeyBias is { } kb                               // (B·T, H·hd)
            ? Ops.KeyBiasedAttention(q, k, v, dims, 1f / MathF.Sqrt(HeadDim), ctx.Mask, kb.HeadBias, kb.KeyFlags)
            : Ops.Attention(q, k, v, dims, 1f / MathF.Sqrt(HeadDim), ctx.Mask);
        if (ctx.Prompts is { } ip)                                  // IAPT: + gate ⊙ attention over the example's own prompts
            a = Ops.Add(a, Ops.MulColumns(Ops.PrefixAttention(q, ip.K, ip.V, ip.DocOf, ip.P, Heads, KvHeads, HeadDim, 1f / MathF.Sqrt(HeadDim)), ip.Gate));
        return OProj.Forward(a);                                    // (B·T, hidden)
    }
}
