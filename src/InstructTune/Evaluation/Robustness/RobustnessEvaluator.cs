namespace InstructTune.Evaluation.Robustness;

/// <summary>A task with several phrasings of its instruction (given, or made by <see cref="ParaphraseGenerator"/>)
/// and a scorer for an output (e.g. ROUGE-L against references, or constraint fidelity).</summary>
public sealed record RobustnessTask(string Id, IReadOnlyList<string> Phrasings, Func<string, double> Score);

/// <summary>Scores of one task across phrasings: mean, population standard deviation, worst (minimum).</summary>
public sealed record RobustnessRow(string Id, IReadOnlyList<double> Scores, double Mean, double Std, double Worst, double Best);

/// <summary>Per-task rows and the overall figures: mean of task means, mean of task stds, worst case anywhere.</summary>
public sealed record RobustnessResult(IReadOnlyList<RobustnessRow> Tasks, double Mean, double MeanStd, double Worst);

/// <summary>Runs every phrasing of every task through the generator in one batch and summarises the spread.</summary>
public static class RobustnessEvaluator
{
    public static RobustnessResult Evaluate(IReadOnlyList<RobustnessTask> tasks, ITextGenerator generator)
    {
        var prompts = tasks.SelectMany(t => t.Phrasings).ToList();
        var outputs = generator.Generate(prompts);
        if (outputs.Count != prompts.Count)
            throw new InvalidOperationException($"generator returned {outputs.Count} outputs for {prompts.Count} prompts");
        int k = 0;
        var rows = new List<RobustnessRow>();
        foreach (var t in tasks)
        {
            var scores = t.Phrasings.Select(_ => t.Score(outputs[k++])).ToList();
            rows.Add(Summarise(t.Id, scores));
        }
        return new RobustnessResult(rows,
            rows.Count == 0 ? double.NaN : rows.Average(r => r.Mean),
            rows.Count == 0 ? double.NaN : rows.Average(r => r.Std),
            rows.Count == 0 ? double.NaN : rows.Min(r => r.Worst));
    }

    public static RobustnessRow Summarise(string id, IReadOnlyList<double> scores)
    {
        if (scores.Count == 0) return new RobustnessRow(id, scores, double.NaN, double.NaN, double.NaN, double.NaN);
        double mean = scores.Average();
        double std = Math.Sqrt(scores.Sum(s => (s - mean) * (s - mean)) / scores.Count);
        return new RobustnessRow(id, scores, mean, std, scores.Min(), scores.Max());
    }
}
