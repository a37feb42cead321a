namespace InstructTune.Training.Config;

// Config sections of the PEFT methods beside LoRA (issue 16). training.method picks the method; each method reads
// only its own section (LoRA/QLoRA/DoRA: `lora`, with lora.use_dora for DoRA). Keys follow PEFT's config names.

/// <summary>`ia3:` — read when training.method = ia3 (PEFT IA3Config).</summary>
public sealed class Ia3Section
{
    [ConfigKey("Linear layers that get a learned vector (module-name suffixes, or \"re:\" + a regular expression).")]
    public List<string> TargetModules { get; set; } = ["k_proj", "v_proj", "down_proj"];
    [ConfigKey("Targets whose vector scales the input instead of the output (must be a subset of target_modules).")]
    public List<string> FeedforwardModules { get; set; } = ["down_proj"];
}
