using InstructTune.Evaluation.Complexity;
using InstructTune.Evaluation.Fidelity;
using InstructTune.Evaluation.Metrics;

namespace InstructTune.Evaluation;

/// <summary>One evaluation instruction: its text, references (may be empty) and metadata (e.g. "complexity").</summary>
public sealed record InstructionItem(string Id, string Instruction, IReadOnlyList<string> References,
    IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>Everything measured for one instruction's output.</summary>
public sealed record InstructionResult(string Id, string Level, string Output, IReadOnlyList<ConstraintResult> Constraints,
    IReadOnlyDictionary<string, double> Metrics);

/// <summary>Fidelity per constraint kind: how many outputs kept it out of how many instructions carried it.</summary>
public sealed record FidelityRow(string Kind, int Kept, int Total)
{
    public double Rate => Total == 0 ? double.NaN : (double)Kept / Total;
}

/// <summary>
/// Generates (or takes given) outputs for instructions and measures, per instruction: complexity level, the
/// constraints extracted and kept (fidelity = share kept; 1 when none), and with references ROUGE-L, token F1
/// and sentence BLEU. Aggregates every metric per level and fidelity per constraint kind.
/// </summary>
public static class InstructionEvaluator
{
    public static IReadOnlyList<InstructionResult> Evaluate(IReadOnlyList<InstructionItem> items, ITextGenerator generator) =>
        Score(items, generator.Generate(items.Select(i => i.Instruction).ToList()));

    public static IReadOnlyList<InstructionResult> Score(IReadOnlyList<InstructionItem> items, IReadOnlyList<string> outputs)
    {
        if (outputs.Count != items.Count) throw new ArgumentException($"{outputs.Count} outputs for {items.Count} instructions");
        return items.Select((item, i) =>
        {
            var output = outputs[i];
            var checks = FidelityChecker.Check(ConstraintExtractor.Extract(item.Instruction), output);
            var metrics = new Dictionary<string, double>
            {
                ["fidelity"] = checks.Count == 0 ? 1 : checks.Count(c => c.Kept) / (double)checks.Count,
            };
            if (item.References.Count > 0)
            {
                metrics["rougeL"] = Rouge.ScoreMulti(item.References, output).RougeL.FMeasure;
                metrics["f1"] = SquadMetrics.F1(output, item.References);
                metrics["bleu"] = Bleu.Sentence(output, item.References).Score / 100;
            }
            var level = ComplexityClassifier.Classify(item.Instruction, item.Metadata);
            return new InstructionResult(item.Id, PerLevel.Name(level), output, checks, metrics);
        }).ToList();
    }

    public static IReadOnlyList<PerLevel.LevelRow> ByLevel(IEnumerable<InstructionResult> results) =>
        PerLevel.Aggregate(results.Select(r => (Parse(r.Level), r.Metrics)));

    public static IReadOnlyList<FidelityRow> ByConstraintKind(IEnumerable<InstructionResult> results) =>
        results.SelectMany(r => r.Constraints).GroupBy(c => c.Constraint.Kind)
            .OrderBy(g => g.Key).Select(g => new FidelityRow(g.Key.ToString(), g.Count(c => c.Kept), g.Count())).ToList();

    private static ComplexityLevel Parse(string level) => level switch
    {
        "simple" => ComplexityLevel.Simple,
        "conditional" => ComplexityLevel.Conditional,
        _ => ComplexityLevel.MultiStep,
    };
}
