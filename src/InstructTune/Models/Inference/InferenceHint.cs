// HINT at inference (Peft/Hint, the training forward's HintHypernetwork.Begin): a sequence's first chunk (its prompt
// prefill) gives up its instruction tokens (segment 1). The instruction is encoded once — the base's first
// encoder_layers decoder layers over the instruction alone, positions 0.., no adapters, mean over its tokens: e — and
// the hypernetwork's outputs for e, the adapter matrix M_l(e) = reshape_{r×r}(W_l·e + b_l) and the P prompt keys/values
// z_l = W_up,l·gelu(W_down,l·e + b_down,l) + b_up,l of every layer, are kept in the sequence's KV cache. The rest of
// the prompt and every decoded token then run without the instruction, at positions 0.. of the stripped sequence:
// y += (α/r)·B·M_l(e)·A·x on the target projections (LinearWeights.Hint, RowAdapters.Mixers) and + gate_l ⊙ attention over the
// prompts after each layer's cached attention (IAPT's path). Encodings are kept per distinct instruction (a task),
// so the examples of one task encode it once.
using InstructTune.Engine.Kernels;
using InstructTune.Models.InstructionAware;
using InstructTune.Peft.Hint;
using InstructTune.Peft.Lora;

namespace InstructTune.Models.Inference;

public sealed partial class InferenceModel
{
    private HintAdapterFile? _hint;
    private WeightMatrix[]? _hintDown, _hintUp;
    private readonly Dictionary<string, HintTask> _hintTasks = [];   // encoded instructions by their token ids (bounded)
    private const int HintTaskCacheSize = 256;

    /// <summary>True with a HINT adapter: a prompt's instruction tokens leave the sequence, so a prompt needs text after them.</summary>
    public bool TakesInstructionOut => _hint != null;

    /// <summary>Instructions HINT has encoded so far (a repeated instruction is encoded once).</summary>
    public int HintEncodings { get; private set; }

    private sealed record HintTask(float[] Mixers, float[][] K, float[][] V);

    /// <summary>Attaches a HINT adapter: the hypernetwork and the gated low-rank pair of each target projection;
    /// throws when the model's layers, widths, heads or a projection do not fit, or another conditioned adapter is on.</summary>
    public void ApplyHint(HintAdapterFile adapter)
    {
        if (_hint != null || _iapt != null || _ipeft != null) throw new InvalidDataException("the model already has an instruction-conditioned adapter attached");
        if (VirtualTokens > 0) throw new InvalidDataException("HINT cannot be combined with prompt or prefix tuning");
        if (InstructionAware != null) throw new InvalidDataException("HINT cannot be combined with the instruction-aware variants (model.instruction_aware)");
        adapter.CheckFits(Config, "HINT adapter");
        var byName = Layers.SelectMany((l, i) => l.Linears(i).Select(x => (x.Name, x.L, Layer: i))).ToDictionary(x => x.Name, x => (x.L, x.Layer));
        foreach (var (module, d) in adapter.Adapters)
        {
            if (!byName.TryGetValue(module, out var lin))
                throw new InvalidDataException($"HINT adapter targets \"{module}\", which is not a linear layer of this model");
            if (d.In != lin.L.In || d.Out != lin.L.Out)
                throw new InvalidDataException($"HINT adapter \"{module}\": hint_A/hint_B give [{d.Out}×{d.In}], the layer is [{lin.L.Out}×{lin.L.In}]");
        }
        int L = adapter.Layers, m = adapter.Config.Bottleneck, z = adapter.Config.NumVirtualTokens * 2 * adapter.KvHeads * adapter.HeadDim;
        _hintDown = new WeightMatrix[L]; _hintUp = new WeightMatrix[L];
        for (int l = 0; l < L; l++)
        {
            _hintDown[l] = WeightMatrix.FromF32(m, adapter.Hidden, adapter.Tensors[$"prompt_down_{l}.weight"]);
            _hintUp[l] = WeightMatrix.FromF32(z, m, adapter.Tensors[$"prompt_up_{l}.weight"]);
        }
        foreach (var (module, d) in adapter.Adapters)   // y += (α/r)·B·M_l·A·x, M_l of the row's sequence (RowAdapters.Mixers)
            byName[module].L.Hint = (new LoraDelta(d.A, d.B, adapter.Config.Rank, d.In, d.Out, adapter.Config.Scale), byName[module].Layer);
        _promptGates = Enumerable.Range(0, L).Select(l => adapter.Tensors[$"prompt_gate_{l}"]).ToArray();
        _hint = adapter;
    }

    /// <summary>
    /// HINT: every chunk that starts its sequence loses its instruction tokens (their encoding goes into its cache);
    /// a later chunk must hold none. Explicit positions are refused unless they are the defaults (the stripped sequence
    /// runs at 0..). <paramref name="rows"/>: for each row the input chunks ask logits for, the index among the kept
    /// tokens of the last kept token at or before it — the stripped sequence's state there, so a prompt that ends in
    /// its instruction still predicts its next token — or −1 (a row of zeros) when none is. Null without HINT.
    /// </summary>
    private IReadOnlyList<SequenceChunk> WithoutHintInstructions(IReadOnlyList<SequenceChunk> chunks, out List<int>? rows)
    {
        rows = null;
        if (_hint == null) return chunks;
        rows = [];
        var run = new List<SequenceChunk>(chunks.Count);
        int kept = 0, V = Config.VocabSize;
        foreach (var ch in chunks)
        {
            int n = ch.Tokens.Length;
            var segs = ch.Segments;
            if (segs != null && segs.Length != n) throw new ArgumentException($"Forward: {segs.Length} segment ids for {n} tokens");
            bool fresh = ch.Cache.HintMixers == null;
            bool IsInstruction(int j) => segs != null && segs[j] == InstructionSpans.Instruction;
            if (!fresh && Enumerable.Range(0, n).Any(IsInstruction))
                throw new ArgumentException("Forward: HINT encodes a sequence's instruction from its first chunk; a later chunk holds instruction tokens");
            var keep = Enumerable.Range(0, n).Where(j => !IsInstruction(j)).ToArray();
            if (fresh)
            {
                if (ch.Cache.Length > 0) throw new ArgumentException("Forward: this KV cache was started without the HINT task encoding");
                if (ch.Positions != null && ch.Positions.Where((p, j) => p != j).Any())
                    throw new ArgumentException("Forward: HINT runs a sequence without its instruction at positions 0..; explicit positions other than 0.. are not supported");
                var instruction = Enumerable.Range(0, n).Where(IsInstruction).Select(j => ch.Tokens[j]).ToArray();
                foreach (var tok in instruction)
                    if ((uint)tok >= (uint)V) throw new ArgumentOutOfRangeException(nameof(chunks), $"token id {tok} is outside the vocabulary [0, {V})");
                if (keep.Length == 0)
                    throw new ArgumentException("Forward: HINT takes the instruction tokens out of the sequence and this prompt holds nothing else to run; "
                        + "use a prompt template whose text follows the instruction (--template)");
                var task = HintTaskOf(instruction);
                ch.Cache.HintMixers = task.Mixers; ch.Cache.PromptK = task.K; ch.Cache.PromptV = task.V;
            }
            else if (ch.Positions != null)
                throw new ArgumentException("Forward: HINT runs a sequence without its instruction at positions 0..; explicit positions are not supported after its first chunk");
            run.Add(ch with { Tokens = keep.Select(j => ch.Tokens[j]).ToArray(), Positions = null, Segments = segs == null ? null : keep.Select(j => segs[j]).ToArray() });
            int last = -1;
            for (int j = 0, k = 0; j < n; j++)
            {
                if (k < keep.Length && keep[k] == j) last = kept + k++;
                if (ch.AllLogits || j == n - 1) rows.Add(last);
            }
            kept += keep.Length;
        }
        return run;
    }

    /// <summary>HINT: M[n, l] = the generated r×r adapter matrix of row n's sequence at layer l (LinearWeights.Hint).</summary>
    private RowAdapters? WithHintMixers(RowAdapters? adapters, KvCache[] caches, int N)
    {
        if (_hint is not { } h) return adapters;
        int L = Layers.Length, w = L * h.Config.Rank * h.Config.Rank;
        var M = new float[N * w];                                            // (N, L, r·r)
        for (int n = 0; n < N; n++) caches[n].HintMixers!.CopyTo(M, n * w);
        return new RowAdapters(adapters?.Groups ?? []) { Mixers = M, MixerLayers = L };
    }

    /// <summary>The encoding of an instruction (its token ids), computed once per distinct instruction.</summary>
    private HintTask HintTaskOf(int[] instruction)
    {
        string key = string.Join(',', instruction);
        lock (_hintTasks)
        {
            if (_hintTasks.TryGetValue(key, out var known)) return known;
            var task = EncodeHintTask(instruction);
            if (_hintTasks.Count >= HintTaskCacheSize) _hintTasks.Clear();
            return _hintTasks[key] = task;
        }
    }

    /// <summary>e (D) = mean over the instruction's tokens of the hidden states after the base's first encoder_layers
    /// layers (0 for an empty instruction), then each layer's adapter matrix and prompts from e.</summary>
    private HintTask EncodeHintTask(int[] instruction)
    {
        var h = _hint!;
        int D = Config.HiddenSize, L = Layers.Length, P = h.Config.NumVirtualTokens, kvd = h.KvHeads * h.HeadDim, m = h.Config.Bottleneck;
        var e = new float[D];
        int Ti = instruction.Length;
        if (Ti > 0)
        {
            int encoderLayers = h.Config.EncoderLayers;
            var cache = new KvCache(Config with { NumHiddenLayers = encoderLayers }, Ti);
            var X = new float[Ti * D];                                       // (Ti, D)
            for (int t = 0; t < Ti; t++) Embed.RowToF32(instruction[t], X.AsSpan(t * D, D));
            var caches = Enumerable.Repeat(cache, Ti).ToArray();
            var pos = Enumerable.Range(0, Ti).ToArray();                     // cache index = position = t
            var scratch = new LayerScratch(Ti, Config);
            for (int l = 0; l < encoderLayers; l++) DecoderLayer(l, X, Ti, caches, pos, pos, null, scratch, promptAttention: false);
            for (int t = 0; t < Ti; t++) System.Numerics.Tensors.TensorPrimitives.Add(e, X.AsSpan(t * D, D), e);
            System.Numerics.Tensors.TensorPrimitives.Divide(e, Ti, e);
            HintEncodings++;
        }
        int rr = h.Config.Rank * h.Config.Rank;
        var mixers = new float[L * rr]; var K = new float[L][]; var V = new float[L][];
        var u = new float[m]; var a = new float[m]; var zs = new float[P * 2 * kvd];
        for (int l = 0; l < L; l++)
        {
            InferenceLinear.Forward(e, WeightMatrix.FromF32(rr, D, h.Tensors[$"adapter_w_{l}"]), h.Tensors[$"adapter_b_{l}"],
                mixers.AsSpan(l * rr, rr), 1);                               // M_l(e) = W_l·e + b_l (r×r row-major)
            InferenceLinear.Forward(e, _hintDown![l], h.Tensors[$"prompt_down_{l}.bias"], u, 1);
            ActivationKernels.GeluForward(u, a, tanhApproximation: false);   // gelu(W_down·e + b_down)
            InferenceLinear.Forward(a, _hintUp![l], h.Tensors[$"prompt_up_{l}.bias"], zs, 1);   // z: prompt p's key, then its value
            K[l] = new float[P * kvd]; V[l] = new float[P * kvd];
            for (int p = 0; p < P; p++)
            {
                zs.AsSpan(2 * p * kvd, kvd).CopyTo(K[l].AsSpan(p * kvd, kvd));
                zs.AsSpan((2 * p + 1) * kvd, kvd).CopyTo(V[l].AsSpan(p * kvd, kvd));
            }
        }
        return new HintTask(mixers, K, V);
    }
}
