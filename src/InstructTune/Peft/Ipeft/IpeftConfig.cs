namespace InstructTune.Peft.Ipeft;

/// <summary>
/// iPEFT (instruction-specific PEFT) settings: low-rank adapters (A: in→r, B: r→out, scaled by alpha/r) on the target
/// projections, each layer's adapter outputs multiplied per token by a gate g_l = tanh(w_l·r_t + b_l), where r_t is the
/// instruction representation of the frozen base: the causal mean of the instruction tokens' embeddings (for every
/// response token: the mean over the whole instruction). w, b start at 0, so every gate is 0 and the model starts as
/// its base; A and B start random (not B = 0 as LoRA) so that the gates get a gradient at step 1.
/// </summary>
public sealed record IpeftConfig
{
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "v_proj"];
    public float Scale => (float)(Alpha / Rank);
    public bool Targets(string moduleName) => new Lora.LoraConfig { TargetModules = TargetModules }.Targets(moduleName);
}
