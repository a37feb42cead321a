namespace InstructTune.Peft.Ia3;

/// <summary>
/// IA3 settings with PEFT's meanings (IA3Config): the target modules get a learned vector l, and those also listed
/// in feedforward_modules get it on their input (l of shape [1, in]) instead of their output ([out, 1]). Matching
/// follows LoRA's rule (a name equals a target or ends with "." + target; "re:" = regular expression). PEFT's
/// defaults for Llama: k_proj, v_proj, down_proj with down_proj feedforward.
/// </summary>
public sealed record Ia3Config
{
    public IReadOnlyList<string> TargetModules { get; init; } = ["k_proj", "v_proj", "down_proj"];
    public IReadOnlyList<string> FeedforwardModules { get; init; } = ["down_proj"];

    public bool Targets(string moduleName) => Matches(TargetModules, moduleName);
    public bool IsFeedforward(string moduleName) => Matches(FeedforwardModules, moduleName);

    private static bool Matches(IReadOnlyList<string> patterns, string moduleName) => patterns.Any(t =>
        t.StartsWith("re:", StringComparison.Ordinal)
            ? System.Text.RegularExpressions.Regex.IsMatch(moduleName, "^(?:" + t[3..] + ")$")
            : moduleName == t || moduleName.EndsWith("." + t, StringComparison.Ordinal));
}
