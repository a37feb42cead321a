// The batched decode core: a set of sequences, each with its own KV cache, sampling settings, random stream and
// (optionally) its own LoRA adapter, advanced together one step at a time. A step is one forward pass over all
// active sequences: a sequence that joined since the last step feeds its whole prompt (prefill), the others feed
// their last token (decode). Sequences join (Add) and leave (Remove, or by finishing) between steps, which is what
// continuous batching in a server needs; Generator.Generate is the same loop run until every sequence finishes.
// Not thread-safe: one owner calls Add / Remove / Step.
using InstructTune.Models.Inference;

namespace InstructTune.Generation;

/// <summary>One sequence of a <see cref="BatchDecoder"/>: its prompt, the tokens chosen so far and, once
/// finished, why it stopped (stop_token, stop_string, max_new_tokens, max_position_embeddings, or the reason given
/// to <see cref="BatchDecoder.Remove"/>).</summary>
public sealed class DecodeSequence
{
    internal DecodeSequence(int id, int[] prompt, GenerationOptions options, Random rng, KvCache cache, InferenceAdapter? adapter, object? tag,
        byte[]? promptSegments = null)
    {
        Id = id; PromptIds = prompt; Options = options; Rng = rng; Cache = cache; Adapter = adapter; Tag = tag; PromptSegments = promptSegments;
    }

    public int Id { get; }
    public int[] PromptIds { get; }
    /// <summary>The prompt's per-token segments (instruction-aware models), or null; generated tokens are response.</summary>
    public byte[]? PromptSegments { get; }
    public GenerationOptions Options { get; }
    public InferenceAdapter? Adapter { get; }
    /// <summary>Whatever the caller attached (a request, a channel); the decoder never reads it.</summary>
    public object? Tag { get; }
    public IReadOnlyList<int> Generated => _generated;
    public string? StopReason { get; internal set; }
    public bool Finished => StopReason != null;

    internal readonly List<int> _generated = [];
    internal readonly Random Rng;
    internal readonly KvCache Cache;
    internal bool Prefilled;

    public GenerationResult ToResult() => new(PromptIds, [.. _generated], StopReason ?? "running");
}

/// <summary>A token chosen in a step; <see cref="Finished"/> when it ended its sequence.</summary>
public readonly record struct DecodeToken(DecodeSequence Sequence, int Token, bool Finished);

public sealed class BatchDecoder(InferenceModel model)
{
    private readonly List<DecodeSequence> _active = [];
    private int _nextId;

    public InferenceModel Model { get; } = model;
    /// <summary>Sequences that will take part in the next step, in the order they joined.</summary>
    public IReadOnlyList<DecodeSequence> Active => _active;
    public int Count => _active.Count;
    /// <summary>Bytes the active sequences' KV caches hold.</summary>
    public long CacheBytes => _active.Sum(s => s.Cache.Bytes);

    /// <summary>
    /// Adds a sequence that joins at the next step. Its random stream is seeded with <paramref name="seed"/>
    /// (default <c>options.Seed</c>); its KV cache holds prompt + max new tokens (at most max_position_embeddings).
    /// A sequence with MaxNewTokens = 0 is returned already finished.
    /// </summary>
    public DecodeSequence Add(int[] promptIds, GenerationOptions options, int? seed = null, InferenceAdapter? adapter = null, object? tag = null,
        byte[]? promptSegments = null)
    {
        if (promptSegments != null && promptSegments.Length != promptIds.Length)
            throw new ArgumentException($"the prompt has {promptIds.Length} tokens but {promptSegments.Length} segment ids");
        options.Validate();
        int maxPos = Model.RealPositions, V = Model.Config.VocabSize;
        if (promptIds.Length == 0) throw new ArgumentException("the prompt is empty");
        if (promptIds.Length > maxPos)
            throw new ArgumentException(Model.VirtualTokens == 0
                ? $"the prompt has {promptIds.Length} tokens, more than max_position_embeddings={maxPos}"
                : $"the prompt has {promptIds.Length} tokens; with the adapter's {Model.VirtualTokens} virtual tokens that is more than max_position_embeddings={Model.Config.MaxPositionEmbeddings}");
        foreach (int t in promptIds)
            if ((uint)t >= (uint)V) throw new ArgumentOutOfRangeException(nameof(promptIds), $"token id {t} is outside the vocabulary [0, {V})");
        foreach (int t in options.LogitBias?.Keys ?? [])
            if ((uint)t >= (uint)V) throw new ArgumentOutOfRangeException(nameof(options), $"logit bias token id {t} is outside the vocabulary [0, {V})");
        var cache = Model.CreateCache(Math.Max(1, Math.Min(maxPos, promptIds.Length + options.MaxNewTokens)));
        var s = new DecodeSequence(_nextId++, promptIds, options, new Random(seed ?? options.Seed), cache, adapter, tag, promptSegments);
        if (options.MaxNewTokens == 0) s.StopReason = "max_new_tokens";
        else _active.Add(s);
        return s;
    }

    /// <summary>Takes a sequence out before it finishes (a cancelled request); its cache is released.</summary>
    public void Remove(DecodeSequence s, string reason = "cancelled")
    {
        if (_active.Remove(s)) s.StopReason ??= reason;
    }

    /// <summary>
    /// One forward pass over every active sequence; returns the token chosen for each (in <see cref="Active"/>
    /// order). Sequences that finish are removed; one that reached max_position_embeddings leaves without a token.
    /// </summary>
    public IReadOnlyList<DecodeToken> Step()
    {
        int maxPos = Model.RealPositions, V = Model.Config.VocabSize;
        foreach (var s in _active.Where(s => s.PromptIds.Length + s._generated.Count >= maxPos).ToList())
        {
            s.StopReason = "max_position_embeddings";
            _active.Remove(s);
        }
        if (_active.Count == 0) return [];
        var batch = _active.ToArray();
        var chunks = batch.Select(Chunk).ToList();
        var logits = Model.Forward(chunks);
        var chosen = new DecodeToken[batch.Length];
        for (int i = 0; i < batch.Length; i++)
        {
            var s = batch[i];
            var o = s.Options;
            s.Prefilled = true;
            var row = logits.AsSpan(i * V, V);
            LogitsSampler.ApplyLogitBias(row, o.LogitBias);
            LogitsSampler.ApplyRepetitionPenalty(row, s.PromptIds.Concat(s._generated), o.RepetitionPenalty);
            LogitsSampler.ApplyPresenceFrequencyPenalty(row, s._generated, o.PresencePenalty, o.FrequencyPenalty);
            // min_new_tokens as vLLM's min_tokens: stop tokens get -inf (HF's MinNewTokensLengthLogitsProcessor) and
            // stop strings are not checked until enough tokens are out.
            if (s._generated.Count < o.MinNewTokens)
                foreach (int stop in o.StopTokenIds) if ((uint)stop < (uint)V) row[stop] = float.NegativeInfinity;
            int tok = Choose(row, s);
            s._generated.Add(tok);
            if (o.StopTokenIds.Contains(tok)) s.StopReason = "stop_token";
            else if (o.StopStrings.Count > 0 && s._generated.Count >= o.MinNewTokens && o.StopStrings.Any(o.Decode!(s._generated).Contains)) s.StopReason = "stop_string";
            else if (s._generated.Count >= o.MaxNewTokens) s.StopReason = "max_new_tokens";
            if (s.Finished) _active.Remove(s);
            chosen[i] = new DecodeToken(s, tok, s.Finished);
        }
        return chosen;
    }

    // Samples; under a constraint a refused token is masked out and the draw repeated (greedy takes the best allowed).
    private static int Choose(Span<float> row, DecodeSequence s)
    {
        var o = s.Options;
        for (int tries = 0; ; tries++)
        {
            int tok = LogitsSampler.Sample(row, o.Temperature, o.TopK, o.TopP, s.Rng);
            if (o.Constraint == null || o.Constraint.Allows(s._generated, tok)) return tok;
            if (tries >= row.Length || float.IsNegativeInfinity(row[tok]))
                throw new InvalidOperationException("the output constraint allows no token of the vocabulary");
            row[tok] = float.NegativeInfinity;
        }
    }

    // Prefill feeds the prompt, decode the last token; without the cache the whole sequence is fed again.
    // Segments: the prompt's own, or instruction for every prompt token when it has none (a prompt is what the user
    // asked); response for every generated token.
    private static SequenceChunk Chunk(DecodeSequence s)
    {
        const byte Response = Models.InstructionAware.InstructionSpans.Response, Instruction = Models.InstructionAware.InstructionSpans.Instruction;
        var prompt = s.PromptSegments ?? Enumerable.Repeat(Instruction, s.PromptIds.Length).ToArray();
        if (!s.Options.UseCache)
        {
            s.Cache.Clear();
            return new SequenceChunk(s.Cache, [.. s.PromptIds, .. s._generated], Adapter: s.Adapter,
                Segments: [.. prompt, .. Enumerable.Repeat(Response, s._generated.Count)]);
        }
        return s.Prefilled
            ? new SequenceChunk(s.Cache, [s._generated[^1]], Adapter: s.Adapter, Segments: [Response])
            : new SequenceChunk(s.Cache, s.PromptIds, Adapter: s.Adapter, Segments: prompt);
    }
}
