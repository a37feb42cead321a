// Two-stream fusion (model.instruction_aware.two_stream_layers = K), issue 15's "separate representations for
// directives and content":
//
//   instruction stream   each row's instruction tokens (segment 1, not padding), in order, with their own positions
//                        and document ids, run alone through the base model's decoder layers 0..K−1 (the same
//                        weights, so LoRA/QLoRA adapters on them apply too; causal, packed documents apart)
//                        u_j = the stream's output at instruction token j                                 (B·Ti, D)
//   pooled               c_t = mean of u_j over the instruction tokens j ≤ t of t's document, 0 before the first
//                        (InstructionSpans.CausalMean: causal, so the KV cache reproduces it)             (B·T, D)
//   fusion               x_t ← x_t + x_t W_xᵀ + c_t W_cᵀ + b                                              (B·T, D)
//
// The fusion is the "concat [x; c] → linear" stored as its difference from [I | 0]: W_x, W_c, b start at
// zero, so the fused embedding equals the original exactly and the model starts as the base model (weight decay then
// pulls toward the identity, not toward zero). The main stream runs every layer as before on the fused embeddings.
//
//   instruction_aware.fusion.x_proj.weight (D, D)   W_x    zero
//   instruction_aware.fusion.c_proj.weight (D, D)   W_c    zero
//   instruction_aware.fusion.bias          (D)      b      zero
// K is stored in instruction_aware.safetensors' metadata ("two_stream_layers"). Inference: InferenceTwoStream.cs
// (the stream keeps its own KV cache for layers 0..K−1 and a running mean of u).
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Models.Layers;

namespace InstructTune.Models.InstructionAware;

public sealed class TwoStreamFusion : Module
{
    public const string Name = "fusion";
    /// <summary>K: the base model's first K decoder layers form the instruction encoder.</summary>
    public int Layers { get; }
    public Parameter XProj { get; }
    public Parameter CProj { get; }
    public Parameter Bias { get; }

    public TwoStreamFusion(int hidden, int layers)
    {
        Layers = layers;
        XProj = RegisterModule("x_proj", new Holder(new Parameter(hidden, hidden))).Weight;
        CProj = RegisterModule("c_proj", new Holder(new Parameter(hidden, hidden))).Weight;
        Bias = RegisterParameter("bias", new Parameter(hidden));
    }

    /// <summary>x (B·T, D) input embeddings → the fused embeddings (B·T, D); runs the instruction stream through
    /// the model's first K layers (positions (B·T) as the main stream's).</summary>
    public Tensor Forward(LlamaModel model, Tensor x, ReadOnlySpan<int> positions, InstructionSpans spans, bool checkpoint)
    {
        var u = InstructionStream(model, x, positions, spans, Layers, checkpoint);  // (B·T, D), read at instruction rows
        var c = spans.CausalMean(u);                                                 // (B·T, D)
        return Ops.Add(x, Ops.Add(Ops.Linear(x, XProj), Ops.Linear(c, CProj, Bias)));
    }

    /// <summary>The instruction stream: x's instruction rows gathered per batch row into (B, Ti) (Ti = the most
    /// instruction tokens of a row; the rest padding that attends to nothing), run through layers 0..K−1, and
    /// gathered back to (B·T, D): row t holds u_t where t is an instruction token (other rows: any row, unread by
    /// CausalMean, which selects instruction rows only and gives the others no gradient).</summary>
    public static Tensor InstructionStream(LlamaModel model, Tensor x, ReadOnlySpan<int> positions, InstructionSpans spans, int K, bool checkpoint)
    {
        int B = spans.B, T = spans.T;
        int Ti = 1;
        for (int b = 0; b < B; b++)
        {
            int n = 0;
            for (int t = 0; t < T; t++) n += spans.Select[b * T + t];
            Ti = Math.Max(Ti, n);
        }
        var gather = new int[B * Ti];   // stream row → batch row
        var back = new int[B * T];      // batch row → stream row (instruction rows)
        var valid = new int[B * Ti];
        var docs = new int[B * Ti];
        var pos = new int[B * Ti];
        Array.Fill(docs, -1);
        for (int b = 0; b < B; b++)
        {
            int k = 0;
            for (int t = 0; t < T; t++)
            {
                int i = b * T + t;
                if (spans.Select[i] == 0) continue;
                int r = b * Ti + k++;
                gather[r] = i; back[i] = r; valid[r] = 1; docs[r] = spans.DocumentOf[i]; pos[r] = positions[i];
            }
            for (; k < Ti; k++) gather[b * Ti + k] = b * T;
        }
        var (cos, sin) = model.Rotary.Tables(pos);                  // (B·Ti, hd/2) each
        var mask = new AttentionMask { Causal = true, Window = model.Config.SlidingWindow ?? 0, KeyValid = valid, DocIds = docs };
        var ctx = new LlamaLayerContext(B, Ti, cos, sin, mask);     // no Instruction: the stream is the plain base
        var h = Ops.GatherRows(x, gather);                          // (B·Ti, D)
        var layers = model.Backbone.Layers;
        for (int l = 0; l < K; l++)
        {
            var layer = layers[l];
            h = checkpoint ? Checkpoint.Run(z => layer.Forward(z, ctx), h) : layer.Forward(h, ctx);
        }
        return Ops.GatherRows(h, back);                             // (B·T, D)
    }

    private sealed class Holder : Module { public Parameter Weight { get; } public Holder(Parameter w) => Weight = RegisterParameter("weight", w); }
}
