using InstructTune.Evaluation.Complexity;
using InstructTune.Evaluation.Fidelity;

namespace InstructTune.Evaluation.Generalization;

/// <summary>
/// Groups tasks by the structure of their instruction, not its topic: the signature is the leading verb
/// (after "please"), the complexity level and the output-format constraints present (JSON, lists, case, counts).
/// Tasks with the same signature form a cluster; holding out whole clusters tests transfer to unseen
/// instruction shapes, which is harder than unseen tasks of a familiar shape.
/// </summary>
public static class TaskClusterer
{
    private static readonly ConstraintKind[] FormatKinds =
    [
        ConstraintKind.Json, ConstraintKind.BulletList, ConstraintKind.NumberedList, ConstraintKind.AllCaps,
        ConstraintKind.Lowercase, ConstraintKind.ItemCount, ConstraintKind.MaxWords, ConstraintKind.ExactSentences,
    ];

    public static string Signature(string instruction)
    {
        var words = instruction.Trim().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            .Select(w => new string(w.Where(char.IsLetter).ToArray()).ToLowerInvariant()).Where(w => w.Length > 0).ToList();
        var verb = words.SkipWhile(w => w is "please" or "now" or "kindly").FirstOrDefault() ?? "";
        var formats = ConstraintExtractor.Extract(instruction).Select(c => c.Kind).Where(FormatKinds.Contains).Distinct().Order();
        return $"{verb}|{PerLevel.Name(ComplexityClassifier.Classify(instruction))}|{string.Join('+', formats)}";
    }

    /// <summary>Task id → cluster signature (the instruction of a task's first example stands for the task).</summary>
    public static Dictionary<string, string> Cluster(IEnumerable<TaskExample> examples) =>
        examples.GroupBy(e => e.TaskId).ToDictionary(g => g.Key, g => Signature(g.First().Instruction));

    /// <summary>Holds out whole clusters (in a seeded order) until at least <paramref name="fraction"/> of the
    /// tasks are held out; returns the held-out task ids.</summary>
    public static HashSet<string> HoldOutClusters(IReadOnlyDictionary<string, string> clusterOfTask, double fraction, int seed)
    {
        var rng = new Random(seed);
        var clusters = clusterOfTask.GroupBy(kv => kv.Value).OrderBy(g => g.Key, StringComparer.Ordinal).OrderBy(_ => rng.Next()).ToList();
        var held = new HashSet<string>();
        foreach (var c in clusters)
        {
            if (held.Count >= fraction * clusterOfTask.Count) break;
            held.UnionWith(c.Select(kv => kv.Key));
        }
        return held;
    }
}
