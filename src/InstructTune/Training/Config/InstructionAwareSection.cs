namespace InstructTune.Training.Config;

/// <summary>`model.instruction_aware:` — the instruction-aware model variants (issue 15; docs/ARCHITECTURE.md
/// "Instruction-aware model variants"). All off by default: a run without them is bit-identical to the plain model.
/// Their parameters always train (also under LoRA/QLoRA/IA3) and are saved as instruction_aware.safetensors beside
/// the model or adapter.</summary>
public sealed class InstructionAwareSection
{
    [ConfigKey("Learned segment embedding (template, instruction, input, response; 4 × hidden, zero at start) added to the token embeddings.")]
    public bool SegmentEmbeddings { get; set; }
    [ConfigKey("Separate instruction embedding: instruction-segment tokens look up their own (vocab × hidden) table, a copy of the base embedding at start (so the model starts as exactly the base), saved in instruction_aware.safetensors.")]
    public bool InstructionEmbedding { get; set; }
    [ConfigKey("Decoder layers (0-based) followed by an instruction gate h + σ(W_h h + W_c c + b) ⊙ (s ⊙ c), c = causal mean of the layer's instruction states; empty = none.")]
    public List<int> GateLayers { get; set; } = [];
    [ConfigKey("Initial gate bias b: σ(b) is where the gates start (−4 → 0.018).", Min = -20, Max = 0)]
    public double GateBiasInit { get; set; } = -4;
    [ConfigKey("Two-stream fusion: the base model's first K decoder layers run over the instruction tokens alone (the instruction stream); its causal mean c is fused into the input embeddings x + W_x x + W_c c + b (zero at start); 0 = off.", Min = 0)]
    public int TwoStreamLayers { get; set; }
    [ConfigKey("Dual head: weight λ of a task classifier over the pooled instruction representation (final hidden states over the instruction tokens), trained on the data's task labels: L = L_objective + λ·L_task; 0 = off. Logged as task_head_loss.", Min = 0)]
    public double TaskHeadWeight { get; set; }
    [ConfigKey("Instruction-representation loss α: L = (1−α)·L_output + α·MSE(W_r·pooled instruction representation, mean of the frozen token embeddings of the instruction); 0 = off. Logged as representation_loss.", Min = 0, Max = 1, MaxExclusive = true)]
    public double RepresentationAlpha { get; set; }
    [ConfigKey("Instruction-biased attention: a learned bias β (per layer and head, zero at start) added to the attention scores of keys in the instruction segment: s_ij = q_i·k_j/√hd + β_h·[segment_j = instruction].")]
    public bool BiasedAttention { get; set; }
    [ConfigKey("Chain-of-thought pathways: width r of three parallel linear+activation paths (SiLU, GELU, tanh) over the final hidden states, concatenated and projected back, residual with a zero-initialised output projection; 0 = off.", Min = 0)]
    public int CotWidth { get; set; }
    [ConfigKey("Temperature head: target sampling temperature per task of the data, e.g. {factual: 0.2, creative: 1.0}; a head τ = softplus(w·p + b) on the pooled instruction representation p learns them with an MSE loss (documents of other tasks add nothing); `itune generate --temperature auto` uses it. Empty = off.")]
    public Dictionary<string, double>? TemperatureTargets { get; set; }
    [ConfigKey("Weight μ of the temperature head's loss: L = L_objective + μ·mean (τ − τ*)²; 0 = no head even with temperature_targets (the baseline of the temperature_head ablation variant). Logged as temperature_loss.", Min = 0)]
    public double TemperatureWeight { get; set; } = 1;
    [ConfigKey("Lowest temperature the head's prediction is clamped to at use (the head starts at (min + max) / 2).", Min = 0, MinExclusive = true)]
    public double TemperatureMin { get; set; } = 0.05;
    [ConfigKey("Highest temperature the head's prediction is clamped to at use.", Min = 0, MinExclusive = true)]
    public double TemperatureMax { get; set; } = 2;
    [ConfigKey("Instruction marker tokens [open, close], e.g. [\"[INST]\", \"[/INST]\"]: added to the tokenizer as special tokens (ids after the vocabulary), the embedding and lm_head resized with new rows at the mean of the old ones (transformers' resize_token_embeddings, mean_resizing), and every instruction segment wrapped in them, in training and in the recorded prompt format that score/generate/eval/serve use. Full fine-tuning, LoRA or QLoRA (there only the new rows train, saved as added_tokens.safetensors beside the adapter). A marker that already is a token, or encodes to one, is refused (the template's own markers need no key). Empty = off.")]
    public List<string> MarkerTokens { get; set; } = [];
}
