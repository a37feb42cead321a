using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using InstructTune.Evaluation.Complexity;
using InstructTune.Evaluation.Generalization;
using InstructTune.Evaluation.Judge;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.MultiTurn;
using InstructTune.Evaluation.Robustness;
using InstructTune.Reports;

namespace InstructTune.Evaluation;

/// <summary>Summary of a judge run: how many judgements were made or failed, the mean IRS, pairwise outcomes.</summary>
public sealed record JudgeSummary(int Total, int Made, int Failed, double MeanScore, int WinsA, int WinsB, int Ties)
{
    public static JudgeSummary From(IReadOnlyList<Judgement> irs, IReadOnlyList<Judgement>? pairwise = null)
    {
        var made = irs.Where(j => j.Ok && j.Score is not null).ToList();
        var p = pairwise ?? [];
        return new JudgeSummary(irs.Count + p.Count, made.Count + p.Count(j => j.Ok), irs.Count(j => !j.Ok) + p.Count(j => !j.Ok),
            made.Count == 0 ? double.NaN : made.Average(j => j.Score!.Value),
            p.Count(j => j.Winner == PairwiseWinner.A), p.Count(j => j.Winner == PairwiseWinner.B), p.Count(j => j.Winner == PairwiseWinner.Tie));
    }
}

/// <summary>Everything one evaluation run produced; any part may be absent. Serialised as results.json.</summary>
public sealed record EvaluationResults
{
    public string Title { get; init; } = "InstructTune evaluation";
    public CorpusScores? TextMetrics { get; init; }
    public IReadOnlyList<PerLevel.LevelRow>? PerLevel { get; init; }
    public IReadOnlyList<FidelityRow>? Fidelity { get; init; }
    public RobustnessResult? Robustness { get; init; }
    public GeneralizationResult? Generalization { get; init; }
    public MultiTurnResult? MultiTurn { get; init; }
    public JudgeSummary? Judge { get; init; }
}

/// <summary>
/// Writes an evaluation's results.json, summary.md and report.html (self-contained, inline SVG: per-level bars,
/// fidelity by constraint, robustness spread with min–max whiskers, shot curves, seen vs unseen), each atomically.
/// </summary>
public static class EvaluationReport
{
    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    public static void Write(EvaluationResults results, string directory)
    {
        Directory.CreateDirectory(directory);
        AtomicFile.WriteAllText(Path.Combine(directory, "results.json"), JsonSerializer.Serialize(results, Json));
        var report = Build(results);
        report.WriteMarkdown(Path.Combine(directory, "summary.md"));
        report.WriteHtml(Path.Combine(directory, "report.html"));
    }

    private static string N(double v, string format = "0.000") =>
        double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "n/a";

    public static Report Build(EvaluationResults r)
    {
        var report = new Report(r.Title);
        if (r.TextMetrics is { } t)
            report.Section("Text metrics").Paragraph($"{t.Count} pairs. BLEU is sacreBLEU corpus BLEU (13a, exp smoothing); ROUGE F-measures as rouge_score; EM and F1 with SQuAD v1.1 normalisation.")
                .Table(["metric", "value"], [["BLEU", N(t.Bleu, "0.00")], ["EM", N(t.Em)], ["F1", N(t.F1)], ["ROUGE-1", N(t.Rouge1)],
                    ["ROUGE-2", N(t.Rouge2)], ["ROUGE-L", N(t.RougeL)], ["ROUGE-Lsum", N(t.RougeLsum)]]);
        if (r.PerLevel is { Count: > 0 } levels)
        {
            var metrics = levels.SelectMany(l => l.Means.Keys).Distinct().ToList();
            var levelRows = levels.Where(l => l.Level != "overall").ToList();
            report.Section("By complexity level")
                .Table(["level", "n", .. metrics], levels.Select(l => (IReadOnlyList<string>)[l.Level, l.Count.ToString(CultureInfo.InvariantCulture), .. metrics.Select(m => N(l.Means.GetValueOrDefault(m, double.NaN)))]))
                .Bar(new BarChart("Metrics per complexity level", "score", levelRows.Select(l => l.Level).ToList(),
                    metrics.Select(m => (m, (IReadOnlyList<Bar>)levelRows.Select(l => new Bar(l.Means.GetValueOrDefault(m, double.NaN))).ToList())).ToList()));
        }
        if (r.Fidelity is { Count: > 0 } fid)
            report.Section("Instruction fidelity")
                .Table(["constraint", "kept", "total", "rate"], fid.Select(f => (IReadOnlyList<string>)[f.Kind, f.Kept.ToString(CultureInfo.InvariantCulture), f.Total.ToString(CultureInfo.InvariantCulture), N(f.Rate)]))
                .Bar(new BarChart("Constraints kept", "rate", fid.Select(f => f.Kind).ToList(), [("kept", fid.Select(f => new Bar(f.Rate)).ToList())]));
        if (r.Robustness is { } rob)
            report.Section("Robustness to rephrasing")
                .Paragraph($"Overall mean {N(rob.Mean)}, mean std {N(rob.MeanStd)}, worst case {N(rob.Worst)}.")
                .Table(["task", "phrasings", "mean", "std", "worst", "best"], rob.Tasks.Select(x => (IReadOnlyList<string>)[x.Id, x.Scores.Count.ToString(CultureInfo.InvariantCulture), N(x.Mean), N(x.Std), N(x.Worst), N(x.Best)]))
                .Bar(new BarChart("Score spread across phrasings (bar = mean, whiskers = worst..best)", "score", rob.Tasks.Select(x => x.Id).ToList(),
                    [("mean", rob.Tasks.Select(x => new Bar(x.Mean, x.Worst, x.Best)).ToList())]));
        if (r.Generalization is { } gen)
        {
            var s = report.Section("Generalization")
                .Table(["k", "seen", "unseen", "drop", "n seen", "n unseen"], gen.Shots.Select(x => (IReadOnlyList<string>)[x.K.ToString(CultureInfo.InvariantCulture), N(x.Seen), N(x.Unseen), N(x.Drop), x.SeenCount.ToString(CultureInfo.InvariantCulture), x.UnseenCount.ToString(CultureInfo.InvariantCulture)]))
                .Line(new LineChart("Shot curve", "k (examples in prompt)", "score",
                    [new Series("seen tasks", gen.Shots.Select(x => ((double)x.K, x.Seen)).ToList()), new Series("unseen tasks", gen.Shots.Select(x => ((double)x.K, x.Unseen)).ToList())]))
                .Bar(new BarChart("Seen vs unseen", "score", gen.Shots.Select(x => $"k={x.K}").ToList(),
                    [("seen", gen.Shots.Select(x => new Bar(x.Seen)).ToList()), ("unseen", gen.Shots.Select(x => new Bar(x.Unseen)).ToList())]));
            if (gen.UnseenByCluster.Count > 0)
                s.Table(["held-out cluster (verb|level|formats)", "score"], gen.UnseenByCluster.Select(kv => (IReadOnlyList<string>)[kv.Key, N(kv.Value)]));
        }
        if (r.MultiTurn is { } mt)
            report.Section("Multi-turn coherence")
                .Paragraph($"Relevance {N(mt.Relevance)}, consistency {N(mt.Consistency)}, completion {N(mt.Completion)}.")
                .Table(["conversation", "turns", "relevance", "consistency", "completed", "contradictions"], mt.Conversations.Select(c => (IReadOnlyList<string>)[c.Id, c.Turns.Count.ToString(CultureInfo.InvariantCulture), N(c.Relevance), N(c.Consistency), c.Completed ? "yes" : "no", string.Join("; ", c.Turns.SelectMany(x => x.Contradictions))]));
        if (r.Judge is { } j)
            report.Section("LLM judge")
                .Table(["judgements", "made", "failed", "mean IRS (1-10)", "A wins", "B wins", "ties"],
                    [[j.Total.ToString(CultureInfo.InvariantCulture), j.Made.ToString(CultureInfo.InvariantCulture), j.Failed.ToString(CultureInfo.InvariantCulture), N(j.MeanScore, "0.00"), j.WinsA.ToString(CultureInfo.InvariantCulture), j.WinsB.ToString(CultureInfo.InvariantCulture), j.Ties.ToString(CultureInfo.InvariantCulture)]]);
        return report;
    }
}
