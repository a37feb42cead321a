// The forward pass over KV caches: embed → for each layer (RMSNorm, q/k/v, RoPE, cache append, GQA attention,
// o_proj residual, RMSNorm, SwiGLU MLP residual) → final RMSNorm → LM head on the rows asked for.
using InstructTune.Engine.Kernels;
using InstructTune.Models.InstructionAware;

namespace InstructTune.Models.Inference;

public sealed partial class InferenceModel
{
    /// <summary>
    /// The residual stream after the last decoder layer (before the final norm), X [N, D] for every fed token, and
    /// the rows whose logits <see cref="Forward"/> returns (−1: a row of zeros; HINT, see WithoutHintInstructions). <paramref name="inputRows"/> replaces the token
    /// embeddings when given (a soft prompt: row = cache index mod P).
    /// </summary>
    private (float[] X, List<int> Rows) Hidden(IReadOnlyList<SequenceChunk> chunks, float[]? inputRows = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (inputRows == null) chunks = WithVirtualTokens(chunks);
        chunks = WithoutHintInstructions(chunks, out var hintRows);   // HINT: the instruction leaves the sequence (encoded once)
        var c = Config;
        int D = c.HiddenSize, V = c.VocabSize;
        int N = chunks.Sum(ch => ch.Tokens.Length);
        if (N == 0) throw new ArgumentException("Forward: no tokens");
        var caches = new KvCache[N];
        var index = new int[N];     // cache index of each token
        var pos = new int[N];
        var rows = new List<int>(); // token rows whose logits are returned
        int at = 0;
        foreach (var ch in chunks)
        {
            if (ch.Tokens.Length == 0) throw new ArgumentException("Forward: empty chunk");
            if (ch.Positions != null && ch.Positions.Length != ch.Tokens.Length)
                throw new ArgumentException($"Forward: {ch.Positions.Length} positions for {ch.Tokens.Length} tokens");
            if (ch.Segments != null && ch.Segments.Length != ch.Tokens.Length)
                throw new ArgumentException($"Forward: {ch.Segments.Length} segment ids for {ch.Tokens.Length} tokens");
            if (ch.Cache.Length + ch.Tokens.Length > ch.Cache.Capacity)
                throw new ArgumentException($"Forward: the KV cache holds {ch.Cache.Capacity} tokens; {ch.Cache.Length} + {ch.Tokens.Length} do not fit");
            if (chunks.Count(o => ReferenceEquals(o.Cache, ch.Cache)) > 1)
                throw new ArgumentException("Forward: two chunks share one KV cache");
            for (int j = 0; j < ch.Tokens.Length; j++, at++)
            {
                int tok = ch.Tokens[j];
                if ((uint)tok >= (uint)V) throw new ArgumentOutOfRangeException(nameof(chunks), $"token id {tok} is outside the vocabulary [0, {V})");
                caches[at] = ch.Cache;
                index[at] = ch.Cache.Length + j;
                pos[at] = ch.Positions?[j] ?? index[at];
                if (pos[at] < 0 || pos[at] >= c.MaxPositionEmbeddings)
                    throw new ArgumentOutOfRangeException(nameof(chunks),
                        $"position {pos[at]} is outside [0, max_position_embeddings={c.MaxPositionEmbeddings}); shorten the input");
                if (ch.AllLogits || j == ch.Tokens.Length - 1) rows.Add(at);
            }
        }
        if (hintRows != null) rows = hintRows;                       // HINT: the rows of the input's layout
        var adapters = WithHintMixers(RowAdaptersOf(chunks), caches, N);

        var X = new float[N * D];                                   // (N, D) residual stream
        if (inputRows != null)
            for (int n = 0; n < N; n++) inputRows.AsSpan((index[n] % VirtualTokens) * D, D).CopyTo(X.AsSpan(n * D, D));
        else for (int n = 0; n < N; n++) Embed.RowToF32(Tokens(chunks, n), X.AsSpan(n * D, D));
        adapters = WithIpeftGates(adapters, X, chunks, N);      // iPEFT: from the plain token embeddings
        GenerateIaptPrompts(X, chunks, N);                      // IAPT: the same, once per sequence
        var ia = InstructionAware;
        var segs = ia != null ? SegmentsOf(chunks, N) : null;
        if (ia?.InstructionEmbedding is { } instrEmbed)             // instruction tokens: their own table
            for (int n = 0; n < N; n++)
                if (segs![n] == InstructionSpans.Instruction) instrEmbed.AsSpan(Tokens(chunks, n) * D, D).CopyTo(X.AsSpan(n * D, D));
        if (ia?.SegmentEmbeddings is { } segEmb)                     // x_t += E_seg[segment_t]
            for (int n = 0; n < N; n++)
                System.Numerics.Tensors.TensorPrimitives.Add(X.AsSpan(n * D, D), segEmb.AsSpan(segs![n] * D, D), X.AsSpan(n * D, D));
        if (ia?.TwoStream is { } twoStream) FuseTwoStream(twoStream, X, N, chunks, segs!, pos, adapters);
        if (ia?.AttentionBias != null)                               // instruction keys for biased attention
            for (int n = 0; n < N; n++) caches[n].InstructionKeys[index[n]] = (byte)(segs![n] == InstructionSpans.Instruction ? 1 : 0);
        var scratch = new LayerScratch(N, c);

        for (int l = 0; l < Layers.Length; l++)
        {
            DecoderLayer(l, X, N, caches, index, pos, adapters, scratch, ia?.AttentionBias?[l]);
            if (ia != null && ia.Gates.TryGetValue(l, out var gate)) Gate(gate, X, N, D, chunks, segs!, l);
        }
        if (ia?.Cot is { } cot) ApplyCot(cot, X, N);              // chain-of-thought pathways (per token)
        foreach (var ch in chunks) ch.Cache.Length += ch.Tokens.Length;
        return (X, rows);
    }

    /// <summary>One forward's work buffers for N rows (reused by every layer).</summary>
    private sealed class LayerScratch(int N, LlamaConfig c)
    {
        public readonly float[] H = new float[N * c.HiddenSize];
        public readonly float[] Q = new float[N * c.NumAttentionHeads * c.HeadDim];   // (N, nH, hd)
        public readonly float[] K = new float[N * c.NumKeyValueHeads * c.HeadDim];    // (N, nKv, hd)
        public readonly float[] V = new float[N * c.NumKeyValueHeads * c.HeadDim];
        public readonly float[] A = new float[N * c.NumAttentionHeads * c.HeadDim];   // attention output (N, nH·hd)
        public readonly float[] T = new float[N * c.HiddenSize];
        public readonly float[] G = new float[N * c.IntermediateSize];
        public readonly float[] U = new float[N * c.IntermediateSize];
        public readonly float[] Cos = new float[N * (c.HeadDim / 2)], Sin = new float[N * (c.HeadDim / 2)]; // (N, hd/2)
        public readonly float[] Rstd = new float[N];                                  // RMSNorm's 1/rms per row (unused)
        public readonly CachedAttention.KvLayer[] Kv = new CachedAttention.KvLayer[N];
        private int[]? _ropeFor;

        /// <summary>Fills Cos/Sin for positions pos once per forward (every layer rotates at the same positions),
        /// with the training path's tables (RopeKernel.CosSin: angle = pos·inv_freq in float32, as transformers).</summary>
        public void RopeAt(int[] pos, float[] invFreq)
        {
            if (ReferenceEquals(_ropeFor, pos)) return;
            RopeKernel.CosSin(pos, invFreq, Cos, Sin);
            _ropeFor = pos;
        }
    }

    /// <summary>Decoder layer l over X [N, D] in place: token n's keys/values go to caches[n] at index[n] (layer l of
    /// that cache), its rotation is at pos[n].</summary>
    private void DecoderLayer(int l, float[] X, int N, KvCache[] caches, int[] index, int[] pos, RowAdapters? adapters, LayerScratch s,
        float[]? instructionBias = null, bool promptAttention = true)
    {
        var c = Config;
        int nH = c.NumAttentionHeads, nKv = c.NumKeyValueHeads, hd = c.HeadDim, D = c.HiddenSize;
        float eps = (float)c.RmsNormEps;
        var L = Layers[l];
        RmsNormKernel.Forward(X, L.InputNorm, s.H, s.Rstd, N, D, eps);
        LinearWeights.ForwardMany(s.H, N, adapters, (L.Q, s.Q), (L.K, s.K), (L.V, s.V));
        s.RopeAt(pos, _invFreq);
        RopeKernel.Forward(s.Q, s.Cos, s.Sin, s.Q, N, nH, hd);                      // (N, nH, hd) rotated at pos[n]
        RopeKernel.Forward(s.K, s.Cos, s.Sin, s.K, N, nKv, hd);
        for (int n = 0; n < N; n++)
        {
            var cache = caches[n];
            s.Kv[n] = new CachedAttention.KvLayer(cache.K[l], cache.V[l], cache.Capacity, instructionBias != null ? cache.InstructionKeys : null);
            for (int g = 0; g < nKv; g++)
            {
                long dst = ((long)g * cache.Capacity + index[n]) * hd;
                s.K.AsSpan((n * nKv + g) * hd, hd).CopyTo(cache.K[l].AsSpan((int)dst, hd));
                s.V.AsSpan((n * nKv + g) * hd, hd).CopyTo(cache.V[l].AsSpan((int)dst, hd));
            }
        }
        CachedAttention.Step(s.Q, s.A, N, nH, nKv, hd, s.Kv, index, c.SlidingWindow ?? 0, instructionBias);
        if (promptAttention) AddPromptAttention(s.Q, s.A, N, caches, l);   // IAPT / HINT: + gate ⊙ attention over the sequence's prompts
        L.O.Forward(s.A, s.T, N, adapters);
        System.Numerics.Tensors.TensorPrimitives.Add(X, s.T, X);
        RmsNormKernel.Forward(X, L.PostAttentionNorm, s.H, s.Rstd, N, D, eps);
        LinearWeights.ForwardMany(s.H, N, adapters, (L.Gate, s.G), (L.Up, s.U));
        VectorMath.SwiGlu(s.G, s.U, s.G);                                          // g ← silu(g) ⊙ u
        L.Down.Forward(s.G, s.T, N, adapters);
        System.Numerics.Tensors.TensorPrimitives.Add(X, s.T, X);
    }

    /// <summary>
    /// Feeds each chunk's tokens into its cache and returns logits [R, V] in chunk order: every position of a
    /// chunk with AllLogits, else only its last position. Positions must be below max_position_embeddings.
    /// </summary>
    public float[] Forward(IReadOnlyList<SequenceChunk> chunks)
    {
        var (X, rows) = Hidden(chunks);
        var c = Config;
        int D = c.HiddenSize, V = c.VocabSize;
        float eps = (float)c.RmsNormEps;
        int R = rows.Count;
        var Xs = new float[R * D];
        for (int r = 0; r < R; r++)
            if (rows[r] >= 0) X.AsSpan(rows[r] * D, D).CopyTo(Xs.AsSpan(r * D, D));   // −1 stays 0: RMSNorm and the LM head keep it 0
        RmsNormKernel.Forward(Xs, FinalNorm, Xs, new float[R], R, D, eps);
        var logits = new float[(long)R * V];
        InferenceLinear.Forward(Xs, LmHead, [], logits, R);
        return logits;
    }

    /// <summary>
    /// The mean over positions of the last hidden state (after the final RMSNorm, as transformers'
    /// last_hidden_state) of one token sequence: a [D] sentence embedding. Because the LM head is linear,
    /// LmHead · embedding equals the mean of the sequence's logits (the test of this method).
    /// </summary>
    public float[] MeanPooledHidden(int[] tokens, InferenceAdapter? adapter = null)
    {
        int D = Config.HiddenSize, N = tokens.Length;
        var (X, _) = Hidden([new SequenceChunk(CreateCache(N), tokens, Adapter: adapter)]);
        RmsNormKernel.Forward(X, FinalNorm, X, new float[N], N, D, (float)Config.RmsNormEps);
        var mean = new float[D];
        for (int n = 0; n < N; n++) System.Numerics.Tensors.TensorPrimitives.Add(mean, X.AsSpan(n * D, D), mean);
        System.Numerics.Tensors.TensorPrimitives.Divide(mean, N, mean);
        return mean;
    }

    /// <summary>
    /// With virtual tokens attached (prompt or prefix tuning), a chunk that starts an empty cache first gets them:
    /// the prefix keys/values copied into cache rows 0..P−1, or the soft prompt run through the model. Real tokens
    /// then sit at cache index and position P.. (explicit positions are shifted by P).
    /// </summary>
    private IReadOnlyList<SequenceChunk> WithVirtualTokens(IReadOnlyList<SequenceChunk> chunks)
    {
        if (VirtualTokens == 0) return chunks;
        var fresh = chunks.Where(ch => ch.Cache.Length == 0).ToList();
        if (_prefixK != null) foreach (var ch in fresh) FillPrefix(ch.Cache);
        else if (fresh.Count > 0) Hidden(fresh.Select(ch => new SequenceChunk(ch.Cache, new int[VirtualTokens], Adapter: ch.Adapter)).ToList(), _softPrompt);
        return chunks.Select(ch => ch.Positions == null ? ch : ch with { Positions = ch.Positions.Select(p => p + VirtualTokens).ToArray() }).ToList();
    }

    /// <summary>Token rows grouped by their chunk's per-sequence adapter (null when no chunk has one).</summary>
    private static RowAdapters? RowAdaptersOf(IReadOnlyList<SequenceChunk> chunks)
    {
        if (chunks.All(ch => ch.Adapter == null)) return null;
        var groups = new Dictionary<InferenceAdapter, List<int>>();
        int at = 0;
        foreach (var ch in chunks)
        {
            if (ch.Adapter is { } a)
            {
                if (!groups.TryGetValue(a, out var rows)) groups[a] = rows = [];
                for (int j = 0; j < ch.Tokens.Length; j++) rows.Add(at + j);
            }
            at += ch.Tokens.Length;
        }
        return new RowAdapters(groups.Select(g => (g.Key, g.Value.ToArray())).ToList());
    }

    /// <summary>The instruction gate after layer l: X ← X + σ(W_h X + W_c C + b) ⊙ (s ⊙ C), C the causal instruction
    /// mean of X (InstructionAwareModule; the same formula as the training forward).</summary>
    private void Gate(GateWeights g, float[] X, int N, int D, IReadOnlyList<SequenceChunk> chunks, byte[] segs, int l)
    {
        var C = InstructionContext(X, D, chunks, segs, l + 1, Layers.Length + 1);  // (N, D)
        var Z = new float[N * D];
        var Zc = new float[N * D];
        InferenceLinear.Forward(X, WeightMatrix.FromF32(D, D, g.Wh), g.Bias, Z, N);
        InferenceLinear.Forward(C, WeightMatrix.FromF32(D, D, g.Wc), [], Zc, N);
        for (int n = 0; n < N; n++)
            for (int d = 0; d < D; d++)
            {
                int i = n * D + d;
                float gate = 1f / (1f + MathF.Exp(-(Z[i] + Zc[i])));
                X[i] += gate * (C[i] * g.Scale[d]);
            }
    }

    /// <summary>Segment id of every fed token (chunks without segments: response).</summary>
    private static byte[] SegmentsOf(IReadOnlyList<SequenceChunk> chunks, int N)
    {
        var segs = new byte[N];
        int at = 0;
        foreach (var ch in chunks)
        {
            if (ch.Segments != null)
                for (int j = 0; j < ch.Segments.Length; j++)
                {
                    if (ch.Segments[j] >= InstructionSpans.Count)
                        throw new ArgumentException($"Forward: segment id {ch.Segments[j]} is outside [0, {InstructionSpans.Count})");
                    segs[at + j] = ch.Segments[j];
                }
            else segs.AsSpan(at, ch.Tokens.Length).Fill(InstructionSpans.Response);
            at += ch.Tokens.Length;
        }
        return segs;
    }

    /// <summary>
    /// The causal instruction context of every fed token at <paramref name="stage"/> (0 = token embeddings, l + 1 =
    /// after layer l): X [N, D] → C [N, D], continuing each sequence's running state in its cache, so a decode step
    /// equals feeding the whole sequence (the training forward's InstructionSpans.CausalMean).
    /// </summary>
    internal static float[] InstructionContext(float[] X, int D, IReadOnlyList<SequenceChunk> chunks, byte[] segs, int stage, int stages)
    {
        var C = new float[X.Length];
        int at = 0;
        foreach (var ch in chunks)
        {
            int n = ch.Tokens.Length;
            var select = new byte[n];
            for (int j = 0; j < n; j++) select[j] = (byte)(segs[at + j] == InstructionSpans.Instruction ? 1 : 0);
            ref var st = ref ch.Cache.InstructionState(stage, stages, D);
            Engine.Kernels.SegmentMeanKernel.Forward(X.AsSpan(at * D, n * D), C.AsSpan(at * D, n * D), new int[n], select,
                new byte[n], n, D, st.Sum, ref st.Count);
            at += n;
        }
        return C;
    }

    private static int Tokens(IReadOnlyList<SequenceChunk> chunks, int n)
    {
        foreach (var ch in chunks)
        {
            if (n < ch.Tokens.Length) return ch.Tokens[n];
            n -= ch.Tokens.Length;
        }
        throw new IndexOutOfRangeException();
    }
}
