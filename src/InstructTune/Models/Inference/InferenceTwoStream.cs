// Two-stream fusion over KV caches (the training forward: Models/InstructionAware/TwoStreamFusion.cs). The fed
// instruction tokens of each sequence run through decoder layers 0..K−1 over the sequence's instruction-stream cache
// (KvCache.EncoderCache: indexed by instruction token, rotated at the token's own position), their outputs extend
// the running mean of the stream (cache stage Layers + 1), and every fed token's embedding is fused with that causal
// mean: x ← x + x W_xᵀ + c W_cᵀ + b. Generated tokens are response: they only read the mean, so a decode step
// costs the fusion's two (D, D) products and nothing else.
using InstructTune.Models.InstructionAware;

namespace InstructTune.Models.Inference;

public sealed partial class InferenceModel
{
    private void FuseTwoStream(TwoStreamWeights w, float[] X, int N, IReadOnlyList<SequenceChunk> chunks, byte[] segs, int[] pos, RowAdapters? adapters)
    {
        int D = Config.HiddenSize;
        var rows = new List<int>();                 // fed rows that are instruction tokens, in order
        var caches = new List<KvCache>();
        var index = new List<int>();
        var added = new int[chunks.Count];
        int at = 0;
        for (int k = 0; k < chunks.Count; k++)
        {
            var ch = chunks[k];
            for (int j = 0; j < ch.Tokens.Length; j++)
                if (segs[at + j] == InstructionSpans.Instruction)
                {
                    var enc = ch.Cache.EncoderCache(Config, w.Layers);
                    rows.Add(at + j); caches.Add(enc); index.Add(enc.Length + added[k]++);
                }
            at += ch.Tokens.Length;
        }
        var Uall = new float[N * D];                // (N, D): the stream's output at instruction rows, 0 elsewhere (unread)
        int Ne = rows.Count;
        if (Ne > 0)
        {
            var Xe = new float[Ne * D];             // (Ne, D)
            var posE = new int[Ne];
            for (int r = 0; r < Ne; r++) { X.AsSpan(rows[r] * D, D).CopyTo(Xe.AsSpan(r * D, D)); posE[r] = pos[rows[r]]; }
            var scratch = new LayerScratch(Ne, Config);
            var rowAdapters = StreamRows(adapters, rows);
            var cacheArray = caches.ToArray();
            var indexArray = index.ToArray();
            for (int l = 0; l < w.Layers; l++) DecoderLayer(l, Xe, Ne, cacheArray, indexArray, posE, rowAdapters, scratch);
            for (int r = 0; r < Ne; r++) Xe.AsSpan(r * D, D).CopyTo(Uall.AsSpan(rows[r] * D, D));
            for (int k = 0; k < chunks.Count; k++)
                if (added[k] > 0) chunks[k].Cache.EncoderCache(Config, w.Layers).Length += added[k];
        }
        var C = InstructionContext(Uall, D, chunks, segs, Layers.Length + 1, Layers.Length + 2);   // (N, D) causal mean of u
        var Zx = new float[N * D];
        var Zc = new float[N * D];
        InferenceLinear.Forward(X, WeightMatrix.FromF32(D, D, w.Wx), [], Zx, N);
        InferenceLinear.Forward(C, WeightMatrix.FromF32(D, D, w.Wc), w.Bias, Zc, N);
        System.Numerics.Tensors.TensorPrimitives.Add(Zx, Zc, Zx);
        System.Numerics.Tensors.TensorPrimitives.Add(X, Zx, X);     // x + (x W_xᵀ + (c W_cᵀ + b)), the training order
    }

    /// <summary>The per-sequence adapters (and iPEFT gates) of the fed rows, renumbered for the stream's rows.</summary>
    private static RowAdapters? StreamRows(RowAdapters? adapters, List<int> rows)
    {
        if (adapters == null) return null;
        var at = new Dictionary<int, int>();
        for (int r = 0; r < rows.Count; r++) at[rows[r]] = r;
        var groups = adapters.Groups
            .Select(g => (g.Adapter, Rows: g.Rows.Where(at.ContainsKey).Select(r => at[r]).ToArray()))
            .Where(g => g.Rows.Length > 0).ToList();
        float[]? gates = null;
        if (adapters.Gates is { } G)
        {
            int L = adapters.GateLayers;
            gates = new float[rows.Count * L];
            for (int r = 0; r < rows.Count; r++) G.AsSpan(rows[r] * L, L).CopyTo(gates.AsSpan(r * L, L));
        }
        return new RowAdapters(groups) { Gates = gates, GateLayers = adapters.GateLayers };
    }
}
