// HINT's hypernetwork (see HintConfig): it takes each example's instruction out of the batch, encodes every distinct
// instruction of the batch once with the frozen base's first layers, and generates per task the adapter matrices and the
// prompt keys/values the examples of that task run with. LlamaModel.Forward calls Begin before anything else.
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Models.InstructionAware;
using InstructTune.Models.Layers;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Peft.Hint;

public sealed class HintHypernetwork : Module, ITaskConditioner, IAdapterLayer
{
    private readonly Parameter[] _w, _b, _gate;
    private readonly Linear[] _down, _up;
    private readonly LlamaConfig _c;
    private Tensor[]? _rowMixers;              // per layer (N, r·r): M_l(e) of each token row's task
    private InstructionPrompts?[]? _prompts;
    public HintConfig Config { get; }
    public int Layers => _w.Length;
    public bool Enabled { get; set; } = true;
    /// <summary>Instructions encoded so far (one per distinct non-empty instruction per forward).</summary>
    public int Runs { get; private set; }
    /// <summary>True while the encoder runs: the HINT adapters then act as their base layers.</summary>
    internal bool Encoding { get; private set; }

    public HintHypernetwork(LlamaConfig c, HintConfig config, Rng rng)
    {
        if (config.EncoderLayers < 1 || config.EncoderLayers > c.NumHiddenLayers)
            throw new ArgumentException($"encoder_layers {config.EncoderLayers} must be within 1..{c.NumHiddenLayers} (the base's decoder layers)");
        if (config.NumVirtualTokens < 1) throw new ArgumentException($"num_virtual_tokens must be at least 1, got {config.NumVirtualTokens}");
        if (config.Bottleneck < 1 || config.Rank < 1) throw new ArgumentException($"rank and bottleneck must be at least 1");
        _c = c; Config = config;
        int L = c.NumHiddenLayers, D = c.HiddenSize, kvd = c.NumKeyValueHeads * c.HeadDim;
        _w = new Parameter[L]; _b = new Parameter[L]; _gate = new Parameter[L]; _down = new Linear[L]; _up = new Linear[L];
        for (int l = 0; l < L; l++)
        {
            int rr = config.Rank * config.Rank;
            _w[l] = RegisterParameter($"adapter_w_{l}", new Parameter(rr, D));                   // zeros: M_l(e) = 0 at init
            _b[l] = RegisterParameter($"adapter_b_{l}", new Parameter(rr));
            _down[l] = RegisterModule($"prompt_down_{l}", new Linear(D, config.Bottleneck, bias: true));
            _up[l] = RegisterModule($"prompt_up_{l}", new Linear(config.Bottleneck, config.NumVirtualTokens * 2 * kvd, bias: true));
            _gate[l] = RegisterParameter($"prompt_gate_{l}", new Parameter(c.NumAttentionHeads * c.HeadDim));   // zeros
            TorchInit.LinearDefault(_down[l], rng);
            TorchInit.LinearDefault(_up[l], rng);
        }
    }

    /// <summary>Layer l's generated r×r matrix M_l(e) per token row of the current forward (N, r·r, row-major), or null.</summary>
    public Tensor? RowMixer(int l) => _rowMixers?[l];
    public InstructionPrompts? Layer(int l) => _prompts?[l];
    public void Prepare(Tensor embeddings, InstructionSpans? spans) { }

    /// <summary>
    /// Splits the batch into tasks and examples: every row's instruction tokens (segment 1) leave the row; rows are
    /// re-packed to the left (positions 0.., labels and segments follow, padding masked) and each distinct instruction
    /// is encoded once. Returns the batch the decoder runs and each input token's row in it (−1 = an instruction token
    /// or padding, whose logits LlamaModel returns as 0); the input itself when disabled. Instruction tokens are not
    /// predicted (their targets are prompt tokens, which SFT does not learn).
    /// </summary>
    public (LlamaBatch Batch, int[]? Rows) Begin(LlamaModel model, LlamaBatch batch)
    {
        _rowMixers = null; _prompts = null;
        if (!Enabled) return (batch, null);
        int B = batch.InputIds.Shape[0], T = batch.InputIds.Shape[1];
        var ids = batch.InputIds.Data; var seg = batch.Segments?.Data; var mask = batch.AttentionMask?.Data; var labels = batch.Labels?.Data;
        var docs = batch.DocumentIds?.Data;                                  // −1 = padding; one document per row
        if (docs != null)
            for (int i = 0; i < B * T; i++)
                if (docs[i] >= 0 && docs[i] != docs[i / T * T] && docs[i / T * T] >= 0)
                    throw new ArgumentException("HINT takes each example's instruction out of its row; a packed row holds several examples: set data.pack: false");
        var tasks = new List<int[]>(); var taskIndex = new Dictionary<string, int>(); var taskOf = new int[B];
        var kept = new List<int>[B];
        for (int b = 0; b < B; b++)
        {
            var instr = new List<int>(); kept[b] = [];
            for (int t = 0; t < T; t++)
            {
                int i = b * T + t;
                if ((mask != null && mask[i] == 0) || (docs != null && docs[i] < 0)) continue;
                if (seg != null && seg[i] == InstructionSpans.Instruction) instr.Add(ids[i]); else kept[b].Add(i);
            }
            string key = string.Join(',', instr);
            if (!taskIndex.TryGetValue(key, out taskOf[b])) { taskOf[b] = taskIndex[key] = tasks.Count; tasks.Add([.. instr]); }
        }
        int T2 = Math.Max(1, kept.Max(k => k.Count));
        var nIds = new int[B * T2]; var nMask = new int[B * T2]; var nPos = new int[B * T2]; var nLab = new int[B * T2]; var nSeg = new int[B * T2];
        var rowTask = new int[B * T2];
        var back = new int[B * T];
        Array.Fill(back, -1);
        Array.Fill(nLab, CrossEntropyKernel.IgnoreIndex); Array.Fill(rowTask, -1);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < kept[b].Count; j++)
            {
                int src = kept[b][j], dst = b * T2 + j;
                nIds[dst] = ids[src]; nMask[dst] = 1; nPos[dst] = j; rowTask[dst] = taskOf[b]; back[src] = dst;
                if (labels != null) nLab[dst] = labels[src];
                if (seg != null) nSeg[dst] = seg[src];
            }
        var e = Encode(model, tasks);                                        // (tasks, D), once per task
        int N = B * T2;
        var gather = rowTask.Select(t => Math.Max(t, 0)).ToArray();
        var keys = new int[tasks.Count * Config.NumVirtualTokens]; var values = new int[keys.Length];
        for (int i = 0; i < keys.Length; i++) { keys[i] = 2 * i; values[i] = 2 * i + 1; }
        int kvd = _c.NumKeyValueHeads * _c.HeadDim;
        _rowMixers = new Tensor[Layers]; _prompts = new InstructionPrompts?[Layers];
        for (int l = 0; l < Layers; l++)
        {
            var m = Ops.Linear(e, _w[l], _b[l]);                             // (tasks, r·r): M_l(e) per task
            _rowMixers[l] = Ops.GatherRows(m, gather);                       // (N, r·r): each row's task's
            var z = _up[l].Forward(Ops.Gelu(_down[l].Forward(e)));           // (tasks, P·2·kv·hd)
            var rows = Ops.Reshape(z, tasks.Count * Config.NumVirtualTokens * 2, kvd);
            _prompts[l] = new InstructionPrompts(Ops.GatherRows(rows, keys), Ops.GatherRows(rows, values), _gate[l], rowTask, Config.NumVirtualTokens);
        }
        return (new LlamaBatch(new IntTensor(nIds, B, T2))
        {
            AttentionMask = new IntTensor(nMask, B, T2), PositionIds = new IntTensor(nPos, B, T2),
            Labels = batch.Labels != null ? new IntTensor(nLab, B, T2) : null, Segments = batch.Segments != null ? new IntTensor(nSeg, B, T2) : null,
        }, back);
    }

    /// <summary>e (tasks, D): the mean over each instruction's tokens of the frozen base's hidden states after its first
    /// encoder_layers decoder layers (the instruction alone, causal, no adapters); 0 for an empty instruction.</summary>
    public Tensor Encode(LlamaModel model, IReadOnlyList<int[]> tasks)
    {
        int S = tasks.Count, D = _c.HiddenSize, Ti = Math.Max(1, tasks.Max(t => t.Length));
        var e = new float[S * D];
        var live = Enumerable.Range(0, S).Where(s => tasks[s].Length > 0).ToArray();
        if (live.Length > 0)
        {
            int n = live.Length;
            var ids = new int[n * Ti]; var valid = new int[n * Ti]; var pos = new int[n * Ti];
            for (int i = 0; i < n; i++)
                for (int t = 0; t < Ti; t++) { pos[i * Ti + t] = t; if (t < tasks[live[i]].Length) { ids[i * Ti + t] = tasks[live[i]][t]; valid[i * Ti + t] = 1; } }
            Encoding = true;
            try
            {
                using var noGrad = Tape.Record(recordGrad: false);
                var (cos, sin) = model.Rotary.Tables(pos);
                var ctx = new LlamaLayerContext(n, Ti, cos, sin, new AttentionMask { Causal = true, Window = _c.SlidingWindow ?? 0, KeyValid = valid });
                var x = Ops.Reshape(model.Backbone.EmbedTokens.Forward(new IntTensor(ids, n, Ti)), n * Ti, D);
                for (int l = 0; l < Config.EncoderLayers; l++) x = model.Backbone.Layers[l].Forward(x, ctx);
                var xs = x.ToArray();
                for (int i = 0; i < n; i++)
                {
                    int len = tasks[live[i]].Length;
                    var dst = e.AsSpan(live[i] * D, D);
                    for (int t = 0; t < len; t++) System.Numerics.Tensors.TensorPrimitives.Add(dst, xs.AsSpan((i * Ti + t) * D, D), dst);
                    System.Numerics.Tensors.TensorPrimitives.Divide(dst, len, dst);
                }
            }
            finally { Encoding = false; }
            Runs += n;
        }
        return Tensor.FromArray(e, S, D);
    }
}

/// <summary>A projection with a HINT adapter: y = W·x + b + (α/r)·B·M_l(e)·A·x, M_l(e) the r×r matrix the hypernetwork
/// generates for the row's task. Names keep the base's and add `hint_A.weight` (r, in), `hint_B.weight` (out, r); A and B
/// random (the generator of M, not B, starts at 0).</summary>
public sealed class HintLinear : Module, IUnaryModule, IAdapterLayer
{
    public Linear Base { get; }
    public Linear A { get; }
    public Linear B { get; }
    public HintHypernetwork Hyper { get; }
    public int Layer { get; }
    public bool Enabled { get; set; } = true;

    public HintLinear(Linear baseLayer, HintHypernetwork hyper, int layer, Rng rng)
    {
        Base = baseLayer; Hyper = hyper; Layer = layer;
        baseLayer.Weight.Frozen = true;
        if (baseLayer.Bias != null) baseLayer.Bias.Frozen = true;
        RegisterParameter("weight", baseLayer.Weight);
        if (baseLayer.Bias != null) RegisterParameter("bias", baseLayer.Bias); else RegisterAbsentParameter("bias");
        int r = hyper.Config.Rank;
        A = RegisterModule("hint_A", new Linear(baseLayer.InFeatures, r));
        B = RegisterModule("hint_B", new Linear(r, baseLayer.OutFeatures));
        TorchInit.LinearDefault(A, rng);
        TorchInit.LinearDefault(B, rng);
    }

    public Tensor Forward(Tensor x)
    {
        var y = Base.Forward(x);                                              // (N, out)
        if (!Enabled || Hyper.Encoding || Hyper.RowMixer(Layer) is not { } m || m.Size(0) != y.Size(0)) return y;
        var mixed = Mix(A.Forward(x), m, Hyper.Config.Rank);                 // (N, r): M_l(e)·A·x per row
        return Ops.Add(y, Ops.Scale(B.Forward(mixed), Hyper.Config.Scale)); // + (α/r)·B·M_l(e)·A·x
    }

    /// <summary>out[n, i] = Σ_j m[n, i·r + j]·ax[n, j]: each row's own r×r matrix times its (r) vector, from
    /// differentiable ops (ax repeated per output i by GatherRows, elementwise product, row sums by a matmul with ones).</summary>
    internal static Tensor Mix(Tensor ax, Tensor m, int r)
    {
        int N = ax.Size(0);
        var idx = new int[N * r * r];
        for (int n = 0; n < N; n++)
            for (int i = 0; i < r; i++)
                for (int j = 0; j < r; j++) idx[(n * r + i) * r + j] = n * r + j;
        var rep = Ops.Reshape(Ops.GatherRows(Ops.Reshape(ax, N * r, 1), idx), N * r, r);   // (N·r, r): row (n, i) = ax[n]
        var prod = Ops.Mul(Ops.Reshape(m, N * r, r), rep);                                   // (N·r, r): m[n, i, j]·ax[n, j]
        return Ops.Reshape(Ops.MatMul(prod, Tensor.FromArray(Enumerable.Repeat(1f, r).ToArray(), r, 1)), N, r);
    }
}
