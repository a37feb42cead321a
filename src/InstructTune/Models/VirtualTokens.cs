// Learned "virtual tokens" that enter every sequence ahead of its real tokens, as PEFT's prompt learning methods do:
// a soft prompt at the embedding layer (prompt tuning) or per-layer key/value prefixes like a past KV cache (prefix
// tuning). The model only sees these interfaces; the methods live in Peft/PromptTuning and Peft/PrefixTuning.
// With P virtual tokens, real tokens take positions P.. (PEFT prepends ones to the attention mask and lets the model
// number positions over the longer sequence), and every real token attends to all P.
using InstructTune.Engine.Tensors;

namespace InstructTune.Models;

public interface IVirtualTokens
{
    /// <summary>P, the number of virtual tokens.</summary>
    int Count { get; }
    /// <summary>When false the model runs without them (the base model).</summary>
    bool Enabled { get; }
}

/// <summary>Prompt tuning: P embedding rows prepended to every sequence's token embeddings.</summary>
public interface ISoftPrompt : IVirtualTokens
{
    /// <summary>(P, hidden), on the current tape.</summary>
    Tensor Embeddings();
}

/// <summary>Prefix tuning: per layer, P keys and values (not rotated) in front of every sequence's own.</summary>
public interface IKvPrefix : IVirtualTokens
{
    /// <summary>For each decoder layer, K and V of shape (P, kvHeads·headDim), on the current tape.</summary>
    IReadOnlyList<(Tensor K, Tensor V)> LayerPrefixes();
}
