using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.Complexity;

/// <summary>How involved an instruction is.</summary>
public enum ComplexityLevel { Simple, Conditional, MultiStep }

/// <summary>
/// Classifies instructions as simple, conditional or multi-step. Metadata wins when the data carries it (a
/// "complexity" or "level" field with a recognised value); otherwise rules on the text: two or more step markers
/// (numbered lines, "first/then/next/finally", "step N", or several imperative sentences joined by "and then")
/// make it multi-step; a condition ("if", "unless", "otherwise", "in case", "depending on", "whether", "only
/// when") makes it conditional; anything else is simple. Multi-step is checked first: a conditional inside a
/// procedure is still a procedure.
/// </summary>
public static partial class ComplexityClassifier
{
    [GeneratedRegex(@"(?m)^\s*\d+[.)]\s+\S")]
    private static partial Regex NumberedLine();
    [GeneratedRegex(@"\b(first(?:ly)?|then|next|after that|afterwards|finally|lastly|subsequently|step \d+|second(?:ly)?|third(?:ly)?)\b", RegexOptions.IgnoreCase)]
    private static partial Regex StepWord();
    [GeneratedRegex(@"\b(if|unless|otherwise|in case|depending on|whether|only when|when(?=[^.?!]*,)|provided that|except when)\b", RegexOptions.IgnoreCase)]
    private static partial Regex ConditionWord();

    public static ComplexityLevel Classify(string instruction, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (FromMetadata(metadata) is { } level) return level;
        int steps = Math.Max(NumberedLine().Matches(instruction).Count, StepWord().Matches(instruction).Count);
        if (steps >= 2) return ComplexityLevel.MultiStep;
        if (ConditionWord().IsMatch(instruction)) return ComplexityLevel.Conditional;
        return ComplexityLevel.Simple;
    }

    public static ComplexityLevel? FromMetadata(IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata is null) return null;
        foreach (var key in new[] { "complexity", "level", "complexity_level" })
            if (metadata.TryGetValue(key, out var v))
                switch (v.Trim().ToLowerInvariant().Replace("_", "-").Replace(" ", "-"))
                {
                    case "simple" or "single" or "single-step" or "basic": return ComplexityLevel.Simple;
                    case "conditional" or "condition": return ComplexityLevel.Conditional;
                    case "multi-step" or "multistep" or "multi" or "complex" or "procedural": return ComplexityLevel.MultiStep;
                }
        return null;
    }
}

/// <summary>Means of every metric per complexity level (and overall), for the per-level report.</summary>
public static class PerLevel
{
    public sealed record LevelRow(string Level, int Count, IReadOnlyDictionary<string, double> Means);

    public static IReadOnlyList<LevelRow> Aggregate(IEnumerable<(ComplexityLevel Level, IReadOnlyDictionary<string, double> Metrics)> items)
    {
        var list = items.ToList();
        var metricNames = list.SelectMany(i => i.Metrics.Keys).Distinct().ToList();
        LevelRow Row(string name, List<(ComplexityLevel Level, IReadOnlyDictionary<string, double> Metrics)> group) => new(name, group.Count,
            metricNames.ToDictionary(m => m, m => group.Where(g => g.Metrics.ContainsKey(m)).Select(g => g.Metrics[m]).DefaultIfEmpty(double.NaN).Average()));
        var rows = Enum.GetValues<ComplexityLevel>()
            .Select(l => Row(Name(l), list.Where(i => i.Level == l).ToList())).ToList();
        rows.Add(Row("overall", list));
        return rows;
    }

    public static string Name(ComplexityLevel level) => level switch
    {
        ComplexityLevel.Simple => "simple",
        ComplexityLevel.Conditional => "conditional",
        _ => "multi-step",
    };
}
