namespace InstructTune.Training.Config;

/// <summary>`iapt:` — read when training.method = iapt (instruction-aware prompt tuning, Peft/Iapt): per decoder layer,
/// a bottleneck generator turns the example's instruction (the data template's instruction span) into soft prompts.</summary>
public sealed class IaptSection
{
    [ConfigKey("Soft prompt tokens generated per layer and example (the paper uses 4). They hold no position: every token attends to them.", Min = 1, Max = 256)]
    public int NumVirtualTokens { get; set; } = 4;
    [ConfigKey("Bottleneck width m of each layer's generator (hidden → m → num_virtual_tokens·2·kv_heads·head_dim).", Min = 1, Max = 4096)]
    public int Bottleneck { get; set; } = 16;
    [ConfigKey("Generator activation: gelu | silu | tanh (the paper learns a rational activation per layer; not built).")]
    public string Activation { get; set; } = "gelu";
}
