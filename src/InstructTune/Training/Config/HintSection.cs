namespace InstructTune.Training.Config;

/// <summary>`hint:` — read when training.method = hint (hypernetwork instruction tuning, Peft/Hint): each example's
/// instruction (the data template's instruction span) leaves its row and is encoded once per distinct instruction
/// per batch; a hypernetwork turns the encoding into per-task adapter gates and prompts.</summary>
public sealed class HintSection
{
    [ConfigKey("The base's first decoder layers (frozen) that encode each instruction on its own.", Min = 1, Max = 1024)]
    public int EncoderLayers { get; set; } = 1;
    [ConfigKey("Rank r of each adapter whose scale the hypernetwork generates per task.", Min = 1, Max = 4096)]
    public int Rank { get; set; } = 8;
    [ConfigKey("Adapter scale α/r.", Min = 0, MinExclusive = true)]
    public double Alpha { get; set; } = 16;
    [ConfigKey("Decoder-layer projections that get a HINT adapter (module-name suffixes, or \"re:\" + a regular expression).")]
    public List<string> TargetModules { get; set; } = ["q_proj", "v_proj"];
    [ConfigKey("Prompt keys/values generated per layer and task from the encoded instruction (no positions).", Min = 1, Max = 256)]
    public int NumVirtualTokens { get; set; } = 4;
    [ConfigKey("Bottleneck width of the per-layer prompt generator.", Min = 1, Max = 4096)]
    public int Bottleneck { get; set; } = 16;
}
