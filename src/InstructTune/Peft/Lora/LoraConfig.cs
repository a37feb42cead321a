namespace InstructTune.Peft.Lora;

/// <summary>
/// LoRA settings with PEFT's meanings: rank r, alpha, dropout on the adapter input, the target modules
/// (a module matches when its name equals a target or ends with "." + target, PEFT's rule for plain
/// names; a target starting with "re:" is a regular expression over the full module name) and rsLoRA
/// scaling (alpha/√r instead of alpha/r). UseDora turns each adapted layer into DoRA (Liu et al., 2024, as PEFT's
/// use_dora): y = m ⊙ (W + scale·B·A)·x / ‖W + scale·B·A‖_row + b, with the magnitude m trained and the row norm
/// treated as a constant in backward.
/// </summary>
public sealed record LoraConfig
{
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    public double Dropout { get; init; }
    public IReadOnlyList<string> TargetModules { get; init; } = DefaultTargets;
    public bool UseRsLora { get; init; }
    public bool UseDora { get; init; }

    public static readonly IReadOnlyList<string> DefaultTargets =
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    public float Scale => (float)(UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank);

    public bool Targets(string moduleName) => TargetModules.Any(t =>
        t.StartsWith("re:", StringComparison.Ordinal)
            ? System.Text.RegularExpressions.Regex.IsMatch(moduleName, "^(?:" + t[3..] + ")$")
            : moduleName == t || moduleName.EndsWith("." + t, StringComparison.Ordinal));
}
