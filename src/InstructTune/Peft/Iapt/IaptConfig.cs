namespace InstructTune.Peft.Iapt;

/// <summary>
/// IAPT (instruction-aware prompt tuning; Zhu et al., ACL 2024, arXiv 2405.18203) settings. At every decoder layer l a
/// prompt generator turns the example's instruction representation r (the mean of the frozen base's token embeddings
/// over the instruction segment) into P soft tokens' keys and values:
///   u = act(W_down,l·r + b_down,l)            (bottleneck m)
///   z = W_up,l·u + b_up,l                      (P·2·kv_heads·head_dim): token p's key, then its value
/// and the layer's attention output gains gate_l ⊙ softmax-attention of each token over its own example's P prompts.
/// gate_l (heads·head_dim) starts at 0, so the model starts as its base. See docs/ARCHITECTURE.md for where this
/// departs from the paper (mean instead of self-attention pooling, fixed instead of learned rational activation,
/// a gated second softmax instead of insertion into the sequence).
/// </summary>
public sealed record IaptConfig
{
    public int NumVirtualTokens { get; init; } = 4;
    public int Bottleneck { get; init; } = 16;
    public string Activation { get; init; } = "gelu";

    public static readonly IReadOnlyList<string> Activations = ["gelu", "silu", "tanh"];
}
