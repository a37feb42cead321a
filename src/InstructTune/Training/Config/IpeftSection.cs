namespace InstructTune.Training.Config;

/// <summary>`ipeft:` — read when training.method = ipeft (instruction-gated low-rank adapters, Peft/Ipeft). Gates come
/// from the instruction segment of each example (the data template's instruction span).</summary>
public sealed class IpeftSection
{
    [ConfigKey("Rank r of each gated adapter (A: in→r, B: r→out).", Min = 1, Max = 4096)]
    public int Rank { get; set; } = 8;
    [ConfigKey("Adapter scale α/r.", Min = 0, MinExclusive = true)]
    public double Alpha { get; set; } = 16;
    [ConfigKey("Decoder-layer projections that get a gated adapter (module-name suffixes, or \"re:\" + a regular expression).")]
    public List<string> TargetModules { get; set; } = ["q_proj", "v_proj"];
}
