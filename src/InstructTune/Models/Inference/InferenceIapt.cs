// IAPT at inference: a sequence's prompts are generated once, from the instruction tokens of its first chunk (the
// prompt prefill), kept in its KV cache, and every fed token adds gate_l ⊙ attention over them after the ordinary
// cached attention of layer l — the training forward's formula (Peft/Iapt/IaptGenerator, LlamaAttention), with the
// same kernel (PrefixAttentionKernel).
using System.Numerics.Tensors;
using InstructTune.Engine.Kernels;
using InstructTune.Models.InstructionAware;
using InstructTune.Peft.Iapt;

namespace InstructTune.Models.Inference;

public sealed partial class InferenceModel
{
    private IaptAdapterFile? _iapt;
    private WeightMatrix[]? _iaptDown, _iaptUp;

    /// <summary>Attaches an IAPT adapter; throws when the model's layers, widths or heads do not fit.</summary>
    public void ApplyIapt(IaptAdapterFile adapter)
    {
        if (_iapt != null || _ipeft != null || _hint != null) throw new InvalidDataException("the model already has an instruction-conditioned adapter attached");
        if (VirtualTokens > 0) throw new InvalidDataException("IAPT cannot be combined with prompt or prefix tuning");
        adapter.CheckFits(Config, "IAPT adapter");
        int L = adapter.Layers, m = adapter.Config.Bottleneck, z = adapter.Config.NumVirtualTokens * 2 * adapter.KvHeads * adapter.HeadDim;
        _iaptDown = new WeightMatrix[L]; _iaptUp = new WeightMatrix[L];
        for (int l = 0; l < L; l++)
        {
            _iaptDown[l] = WeightMatrix.FromF32(m, adapter.Hidden, adapter.Tensors[$"down_{l}.weight"]);
            _iaptUp[l] = WeightMatrix.FromF32(z, m, adapter.Tensors[$"up_{l}.weight"]);
        }
        _iapt = adapter;
        _promptGates = Enumerable.Range(0, L).Select(l => adapter.Tensors[$"gate_{l}"]).ToArray();
    }

    /// <summary>
    /// For every chunk that starts its sequence: r = mean of the token embeddings X over its instruction tokens (0 when
    /// none), then per layer K, V of the P prompts into the cache. A later chunk must not hold instruction tokens (the
    /// prompts are fixed once generated).
    /// </summary>
    private void GenerateIaptPrompts(float[] X, IReadOnlyList<SequenceChunk> chunks, int N)
    {
        if (_iapt is not { } ip) return;
        int D = Config.HiddenSize, P = ip.Config.NumVirtualTokens, kvd = ip.KvHeads * ip.HeadDim, m = ip.Config.Bottleneck;
        var segs = SegmentsOf(chunks, N);
        int at = 0;
        foreach (var ch in chunks)
        {
            int n = ch.Tokens.Length;
            bool hasInstruction = segs.AsSpan(at, n).Contains((byte)InstructionSpans.Instruction);
            if (ch.Cache.Length > 0)
            {
                if (hasInstruction)
                    throw new ArgumentException("Forward: IAPT generates a sequence's prompts from the instruction in its first chunk; a later chunk holds instruction tokens");
                if (ch.Cache.PromptK == null) throw new ArgumentException("Forward: this KV cache was started without the IAPT prompts");
                at += n; continue;
            }
            var r = new float[D];
            int count = 0;
            for (int j = 0; j < n; j++)
                if (segs[at + j] == InstructionSpans.Instruction) { TensorPrimitives.Add(r, X.AsSpan((at + j) * D, D), r); count++; }
            if (count > 0) TensorPrimitives.Divide(r, count, r);
            ch.Cache.PromptK = new float[Layers.Length][]; ch.Cache.PromptV = new float[Layers.Length][];
            var u = new float[m]; var zs = new float[P * 2 * kvd];
            for (int l = 0; l < Layers.Length; l++)
            {
                InferenceLinear.Forward(r, _iaptDown![l], ip.Tensors[$"down_{l}.bias"], u, 1);   // u = act(W_down·r + b)
                IaptGenerator.Act(u, ip.Config.Activation);
                InferenceLinear.Forward(u, _iaptUp![l], ip.Tensors[$"up_{l}.bias"], zs, 1);      // z = W_up·u + b: token p's key, then value
                var k = ch.Cache.PromptK[l] = new float[P * kvd];
                var v = ch.Cache.PromptV[l] = new float[P * kvd];
                for (int p = 0; p < P; p++)
                {
                    zs.AsSpan((2 * p) * kvd, kvd).CopyTo(k.AsSpan(p * kvd, kvd));
                    zs.AsSpan((2 * p + 1) * kvd, kvd).CopyTo(v.AsSpan(p * kvd, kvd));
                }
            }
            at += n;
        }
    }

    /// <summary>Per layer, the gate of the generated prompts' attention (IAPT's gate_l, HINT's prompt_gate_l), or null.</summary>
    private float[][]? _promptGates;

    /// <summary>A[n] += gate_l ⊙ attention of query row n over its sequence's generated prompts (layer l; IAPT and HINT).</summary>
    private void AddPromptAttention(float[] Q, float[] A, int N, KvCache[] caches, int l)
    {
        if (_promptGates is not { } gates) return;
        int nH = Config.NumAttentionHeads, nKv = Config.NumKeyValueHeads, hd = Config.HeadDim, W = nH * hd;
        int P = caches[0].PromptK![l].Length / (nKv * hd);
        var gate = gates[l];
        var o = new float[W]; var probs = new float[nH * P];
        for (int n = 0; n < N; n++)
        {
            PrefixAttentionKernel.Forward(Q.AsSpan(n * W, W), caches[n].PromptK![l], caches[n].PromptV![l], o, probs, [0], 1, P, nH, nKv, hd, 1f / MathF.Sqrt(hd));
            TensorPrimitives.MultiplyAdd(o, gate, A.AsSpan(n * W, W), A.AsSpan(n * W, W));
        }
    }
}
