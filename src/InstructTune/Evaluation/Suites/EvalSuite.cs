using System.Text.Json;
using System.Text.Json.Serialization;
using InstructTune.Evaluation.Generalization;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.MultiTurn;

namespace InstructTune.Evaluation.Suites;

/// <summary>A robustness task in a suite: phrasings given, or generated from the instruction when absent.</summary>
public sealed record SuiteRobustnessTask(string Id, string Instruction, IReadOnlyList<string>? Phrasings = null,
    IReadOnlyList<string>? References = null);

/// <summary>The generalization part of a suite: a training split, evaluation examples and which tasks are held
/// out (listed, or whole structural clusters chosen to reach <see cref="HeldOutFraction"/>).</summary>
public sealed record SuiteGeneralization(IReadOnlyList<TaskExample> Train, IReadOnlyList<TaskExample> Eval,
    IReadOnlyList<string>? HeldOutTasks = null, double HeldOutFraction = 0.3, IReadOnlyList<int>? Shots = null);

/// <summary>
/// An evaluation suite (the <c>--suite FILE</c> of <c>itune eval model</c>, or <see cref="BuiltinSuite"/>): any of
/// instructions, robustness tasks, a generalization split and multi-turn conversations. JSON with camelCase or
/// snake_case keys; unknown keys are errors that name the key and line.
/// </summary>
public sealed record EvalSuite
{
    public string Name { get; init; } = "suite";
    public IReadOnlyList<InstructionItem> Instructions { get; init; } = [];
    public IReadOnlyList<SuiteRobustnessTask> Robustness { get; init; } = [];
    public SuiteGeneralization? Generalization { get; init; }
    public IReadOnlyList<Conversation> Conversations { get; init; } = [];
    public int Phrasings { get; init; } = 4;
    public int Seed { get; init; }

    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        PropertyNameCaseInsensitive = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    public static EvalSuite Load(string path)
    {
        if (!File.Exists(path)) throw new EvalInputException($"{path}: suite file not found");
        EvalSuite? suite;
        try { suite = JsonSerializer.Deserialize<EvalSuite>(File.ReadAllText(path), Options); }
        catch (JsonException ex)
        {
            throw new EvalInputException($"{path}:{(ex.LineNumber ?? 0) + 1}: {ex.Path}: {FirstLine(ex.Message)}");
        }
        if (suite is null) throw new EvalInputException($"{path}: empty suite");
        suite.Validate(path);
        return suite;
    }

    public static string Serialize(EvalSuite suite) => JsonSerializer.Serialize(suite, new JsonSerializerOptions(Options) { WriteIndented = true });

    private void Validate(string path)
    {
        var problems = new List<string>();
        for (int i = 0; i < Instructions.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(Instructions[i].Id)) problems.Add($"instructions[{i}].id: missing");
            if (string.IsNullOrWhiteSpace(Instructions[i].Instruction)) problems.Add($"instructions[{i}].instruction: missing");
            if (Instructions[i].References is null) problems.Add($"instructions[{i}].references: missing (use [] for none)");
        }
        foreach (var dup in Instructions.GroupBy(i => i.Id).Where(g => g.Count() > 1)) problems.Add($"instructions: duplicate id \"{dup.Key}\"");
        for (int i = 0; i < Robustness.Count; i++)
            if (string.IsNullOrWhiteSpace(Robustness[i].Instruction)) problems.Add($"robustness[{i}].instruction: missing");
        for (int i = 0; i < Conversations.Count; i++)
            if (Conversations[i].Turns is not { Count: > 0 }) problems.Add($"conversations[{i}].turns: empty");
        if (Generalization is { } g && (g.Train is null || g.Eval is null)) problems.Add("generalization: needs train and eval");
        if (problems.Count > 0) throw new EvalInputException($"{path}: " + string.Join($"\n{path}: ", problems));
    }

    private static string FirstLine(string s) => s.Split('\n')[0];
}
