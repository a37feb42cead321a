namespace InstructTune.Peft.Iasft;

/// <summary>Where the top-k of the Fisher is taken: within each weight matrix, or over all targeted matrices at once.</summary>
public enum FisherSelection { PerTensor, Global }

/// <summary>
/// IaSFT (instruction-aware sparse fine-tuning) settings. The diagonal Fisher F = mean over FisherBatches batches of
/// (∂L_response/∂W)² is estimated at the base weights on the instruction data; the Fraction of entries with the
/// largest F (per tensor, or globally) become trainable deltas, all other weights stay frozen. Targets follow LoRA's
/// matching rule (a name equals a target or ends with "." + target; "re:" = regular expression over the full name).
/// </summary>
public sealed record IasftConfig
{
    public double Fraction { get; init; } = 0.005;
    public FisherSelection Selection { get; init; } = FisherSelection.PerTensor;
    public int FisherBatches { get; init; } = 8;
    public IReadOnlyList<string> TargetModules { get; init; } = Lora.LoraConfig.DefaultTargets;

    public bool Targets(string moduleName) => new Lora.LoraConfig { TargetModules = TargetModules }.Targets(moduleName);
}
