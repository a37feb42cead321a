using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using InstructTune.Reports;

namespace InstructTune.Training.Continual;

/// <summary>
/// The forgetting matrix of a staged run and the continual-learning summary numbers. R[i][j] is the score on stage
/// j's held-out set after training stage i (row 0: the starting model, before stage 1). With T stages
/// (Lopez-Paz &amp; Ranzato 2017, "Gradient Episodic Memory for Continual Learning", §4; Chaudhry et al. 2018,
/// "Riemannian Walk for Incremental Learning", §4):
///   ACC = (1/T) Σ_j R[T][j]                                       average accuracy after the last stage
///   BWT = 1/(T−1) Σ_{j&lt;T} (R[T][j] − R[j][j])                     backward transfer (&lt; 0: forgetting)
///   FWT = 1/(T−1) Σ_{j≥2} (R[j−1][j] − R[0][j])                     forward transfer (b̄_j = the starting model's score)
///   F   = 1/(T−1) Σ_{j&lt;T} (max_{l∈[1,T−1]} R[l][j] − R[T][j])      average forgetting (Chaudhry et al.)
/// Stages are 1-based in the formulas and in the files; rows present so far are used (a run still going has fewer).
/// </summary>
public static class ForgettingReport
{
    public const string JsonFile = "forgetting.json";
    public const string HtmlFile = "forgetting.html";

    public sealed record Summary(
        [property: JsonPropertyName("average_accuracy")] double AverageAccuracy,
        [property: JsonPropertyName("backward_transfer")] double BackwardTransfer,
        [property: JsonPropertyName("forward_transfer")] double ForwardTransfer,
        [property: JsonPropertyName("forgetting")] double Forgetting);

    /// <summary>The summary of a (T+1)×T matrix whose row 0 is the starting model; NaN where undefined (T = 1).</summary>
    public static Summary Summarise(IReadOnlyList<IReadOnlyList<double>> R)
    {
        int T = R[0].Count;
        if (R.Count != T + 1) throw new ArgumentException($"the matrix needs {T + 1} rows (start + one per stage), has {R.Count}");
        double acc = Enumerable.Range(0, T).Average(j => R[T][j]);
        if (T < 2) return new Summary(acc, double.NaN, double.NaN, double.NaN);
        double bwt = 0, fwt = 0, forgetting = 0;
        for (int j = 1; j < T; j++)   // stage j (1-based) = column j−1
        {
            bwt += R[T][j - 1] - R[j][j - 1];
            double best = double.NegativeInfinity;
            for (int l = 1; l <= T - 1; l++) best = Math.Max(best, R[l][j - 1]);
            forgetting += best - R[T][j - 1];
        }
        for (int j = 2; j <= T; j++) fwt += R[j - 1][j - 1] - R[0][j - 1];
        return new Summary(acc, bwt / (T - 1), fwt / (T - 1), forgetting / (T - 1));
    }

    /// <summary>One evaluation row: the scores on every stage's held-out set after <see cref="Stage"/> (0 = start).</summary>
    public sealed record Row([property: JsonPropertyName("after_stage")] int Stage, [property: JsonPropertyName("step")] int Step,
        [property: JsonPropertyName("scores")] IReadOnlyList<HeldOutScore> Scores);

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string Serialize(Row row) => JsonSerializer.Serialize(row, Json);
    public static Row? Deserialize(string json) => JsonSerializer.Deserialize<Row>(json, Json);

    /// <summary>Writes forgetting.json and forgetting.html from the rows so far (row k = after stage k, 0 = start).</summary>
    public static void Write(string runDir, IReadOnlyList<string> stageNames, IReadOnlyList<Row> rows, string strategy)
    {
        int T = stageNames.Count;
        double[][] Matrix(Func<HeldOutScore, double> f) => rows.Select(r => r.Scores.Select(f).ToArray()).ToArray();
        var metrics = new (string Name, Func<HeldOutScore, double> Of)[]
        {
            ("token_accuracy", s => s.TokenAccuracy), ("exact_match", s => s.ExactMatch), ("loss", s => s.Loss),
        };
        var matrices = metrics.ToDictionary(m => m.Name, m => Matrix(m.Of));
        bool complete = rows.Count == T + 1;
        var summaries = complete
            ? metrics.Where(m => m.Name != "loss").ToDictionary(m => m.Name, m => (object)Summarise(matrices[m.Name]))
            : [];
        var doc = new Dictionary<string, object>
        {
            ["strategy"] = strategy,
            ["stages"] = stageNames,
            ["rows"] = rows.Select(r => r.Stage == 0 ? "start" : $"after stage {r.Stage}").ToList(),
            ["complete"] = complete,
            ["held_out_examples"] = rows.Count > 0 ? rows[0].Scores.Select(s => s.Examples).ToList() : [],
            ["matrices"] = matrices,
            ["summary"] = summaries,
            ["definitions"] = "R[i][j]: score on stage j's held-out set after stage i (row 0: the starting model). ACC = mean_j R[T][j]; " +
                "BWT = mean_{j<T} (R[T][j] - R[j][j]); FWT = mean_{j>=2} (R[j-1][j] - R[0][j]) (Lopez-Paz & Ranzato 2017, GEM, section 4); " +
                "forgetting = mean_{j<T} (max_{1<=l<T} R[l][j] - R[T][j]) (Chaudhry et al. 2018, RWalk). " +
                "token_accuracy: argmax = reference over response tokens (teacher forcing); exact_match: every response token argmax-correct " +
                "(what greedy decoding reproduces); loss: mean response-token cross-entropy.",
        };
        Checkpoints.AtomicFile.WriteAllText(Path.Combine(runDir, JsonFile), JsonSerializer.Serialize(doc, Json));

        var report = new Report($"Forgetting matrix ({strategy})");
        var rowLabels = rows.Select(r => r.Stage == 0 ? "start" : $"after {r.Stage}").ToList();
        var colLabels = stageNames.Select((n, j) => $"{j + 1}: {n}").ToList();
        var intro = report.Section("What this shows");
        intro.Paragraph("Each row is the model after a stage (\"start\" is the model before stage 1); each column is one stage's held-out set. " +
            "Token accuracy is the share of response tokens predicted exactly (teacher forcing); exact match is the share of examples greedy decoding reproduces.");
        if (!complete) intro.Paragraph($"The run has finished {rows.Count - 1} of {T} stages so far: the summary appears when every stage is done.");
        foreach (var (name, _) in metrics)
        {
            var s = report.Section(name.Replace('_', ' '));
            s.Heatmap(new HeatmapChart($"R[i][j]: {name.Replace('_', ' ')}", rowLabels, colLabels,
                matrices[name].Select(r => (IReadOnlyList<double>)r).ToList()));
            if (summaries.TryGetValue(name, out var o) && o is Summary m)
                s.Table(["ACC", "BWT", "FWT", "forgetting"], [[F(m.AverageAccuracy), F(m.BackwardTransfer), F(m.ForwardTransfer), F(m.Forgetting)]]);
        }
        report.Section("Definitions").Paragraph((string)doc["definitions"]);
        report.WriteHtml(Path.Combine(runDir, HtmlFile));
    }

    private static string F(double v) => double.IsFinite(v) ? v.ToString("+0.0000;-0.0000;0.0000", CultureInfo.InvariantCulture) : "n/a";
}
