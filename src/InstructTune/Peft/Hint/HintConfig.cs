namespace InstructTune.Peft.Hint;

/// <summary>
/// HINT (hypernetwork instruction tuning; Ivison et al., ACL 2023, arXiv 2212.10315) settings. Each example's
/// instruction (its instruction-segment tokens) is taken out of the example; the distinct instructions of a batch (the
/// tasks) are encoded once each by the frozen base's first <see cref="EncoderLayers"/> decoder layers (mean over the
/// instruction tokens: e), and a hypernetwork turns e into what the examples of that task then run with:
///   adapters: on each target projection of layer l, y = W·x + b + (α/r)·B·M_l(e)·A·x, M_l(e) = reshape_{r×r}(W_l·e + b_l):
///             a generated low-rank weight ΔW = (α/r)·B·M_l(e)·A per task (A, B trained; W_l (r², D), b_l (r²) generate M)
///   prompts:  per layer P keys/values z_l = W_up,l·gelu(W_down,l·e + b_down,l) + b_up,l, attended by every token of
///             the task's examples with their own softmax, times gate_l (IAPT's zero-gated prompt attention; the
///             decoder-only form of HINT's fusion-in-decoder: the examples read the encoded instruction)
/// W_l, b_l and gate start at 0: at init every example runs as the base model without its instruction text.
/// </summary>
public sealed record HintConfig
{
    public int EncoderLayers { get; init; } = 1;
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "v_proj"];
    public int NumVirtualTokens { get; init; } = 4;
    public int Bottleneck { get; init; } = 16;
    public float Scale => (float)(Alpha / Rank);
    public bool Targets(string moduleName) => new Lora.LoraConfig { TargetModules = TargetModules }.Targets(moduleName);
}
