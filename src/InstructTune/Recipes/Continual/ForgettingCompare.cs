// `itune eval compare` over continual-learning results: forgetting.json files (or run folders holding one) and
// continual.json files (or `itune continual` output folders) side by side — per strategy ACC, BWT, FWT and forgetting
// (mean ± std over seeds where the input has several), with each one's difference from the first. Writes compare.json,
// compare.md and report.html.
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Reports;
using InstructTune.Training.Continual;

namespace InstructTune.Recipes.Continual;

public static class ForgettingCompare
{
    public sealed record Entry(string Name, string Source, int Runs, IReadOnlyDictionary<string, ContinualMetricStats> Metrics);

    private static readonly string[] Numbers = ["average_accuracy", "backward_transfer", "forward_transfer", "forgetting"];
    private static readonly string[] Short = ["ACC", "BWT", "FWT", "forgetting"];

    /// <summary>The forgetting.json or continual.json a path names (the file, or a folder holding one); null when neither.</summary>
    public static string? ReportFile(string path)
    {
        if (File.Exists(path)) return Path.GetFileName(path) is ForgettingReport.JsonFile or ContinualBenchmark.JsonFile ? path : null;
        foreach (var f in new[] { ContinualBenchmark.JsonFile, ForgettingReport.JsonFile })
            if (File.Exists(Path.Combine(path, f))) return Path.Combine(path, f);
        return null;
    }

    /// <summary>The entries of one report: one for a forgetting.json, one per strategy for a continual.json.</summary>
    public static IReadOnlyList<Entry> Read(string path)
    {
        var file = ReportFile(path) ?? throw new Common.InputException($"{path}: not a forgetting.json / continual.json (or a folder holding one)");
        JsonElement doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(file)).RootElement; }
        catch (JsonException e) { throw new Common.InputException($"{file}: not valid JSON ({e.Message})"); }
        var folder = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(file))) ?? file;
        if (Path.GetFileName(file) == ContinualBenchmark.JsonFile)
        {
            var report = JsonSerializer.Deserialize<ContinualBenchmarkReport>(doc.GetRawText(), ContinualBenchmark.Json)
                ?? throw new Common.InputException($"{file}: empty");
            return report.Strategies.Select(s => new Entry(s.Strategy, file, s.Runs, s.Metrics)).ToList();
        }
        if (!doc.TryGetProperty("complete", out var c) || !c.GetBoolean())
            throw new Common.InputException($"{file}: the run has not finished every stage (no summary yet)");
        var run = ContinualBenchmark.FromForgetting(doc.GetProperty("strategy").GetString() ?? "", 0, Path.GetDirectoryName(file)!, 0);
        var metrics = run.Summary.ToDictionary(kv => kv.Key, kv => new ContinualMetricStats(
            new(kv.Value.AverageAccuracy, double.NaN), new(kv.Value.BackwardTransfer, double.NaN),
            new(kv.Value.ForwardTransfer, double.NaN), new(kv.Value.Forgetting, double.NaN)));
        return [new Entry($"{folder} ({run.Strategy})", file, 1, metrics)];
    }

    private static double Get(ContinualMetricStats m, int k) => k switch
    {
        0 => m.AverageAccuracy.Mean, 1 => m.BackwardTransfer.Mean, 2 => m.ForwardTransfer.Mean, _ => m.Forgetting.Mean,
    };
    private static double Std(ContinualMetricStats m, int k) => k switch
    {
        0 => m.AverageAccuracy.Std, 1 => m.BackwardTransfer.Std, 2 => m.ForwardTransfer.Std, _ => m.Forgetting.Std,
    };

    public static JsonObject Compare(IReadOnlyList<Entry> entries)
    {
        if (entries.Count < 2) throw new Common.InputException("eval compare needs at least two strategies (forgetting reports or continual.json strategies)");
        if (entries.Select(e => e.Name).Distinct().Count() < entries.Count)
            entries = entries.Select((e, i) => e with { Name = $"{i + 1}:{e.Name}" }).ToList();
        var metrics = new JsonObject();
        foreach (var m in ContinualBenchmark.Metrics.Where(m => entries.All(e => e.Metrics.ContainsKey(m))))
        {
            var rows = new JsonObject();
            foreach (var e in entries)
            {
                var o = new JsonObject { ["runs"] = e.Runs, ["source"] = e.Source };
                for (int k = 0; k < 4; k++)
                {
                    o[Numbers[k]] = Num(Get(e.Metrics[m], k));
                    o[Numbers[k] + "_std"] = Num(Std(e.Metrics[m], k));
                    o[Numbers[k] + "_diff"] = Num(Get(e.Metrics[m], k) - Get(entries[0].Metrics[m], k));
                }
                rows[e.Name] = o;
            }
            metrics[m] = rows;
        }
        if (metrics.Count == 0) throw new Common.InputException("eval compare: the reports share no metric (token_accuracy / exact_match)");
        return new JsonObject { ["kind"] = "continual", ["baseline"] = entries[0].Name, ["metrics"] = metrics };
    }

    private static JsonNode? Num(double x) => double.IsFinite(x) ? JsonValue.Create(x) : null;

    private static string Cell(JsonNode? mean, JsonNode? std) => mean is null ? "n/a"
        : mean.GetValue<double>().ToString("+0.0000;-0.0000;0.0000", CultureInfo.InvariantCulture)
          + (std is null ? "" : " ± " + std.GetValue<double>().ToString("0.0000", CultureInfo.InvariantCulture));

    /// <summary>Rows of one metric's table: strategy, runs, then mean ± std and the difference from the first of each number.</summary>
    public static List<IReadOnlyList<string>> Rows(JsonObject result, string metric) =>
        result["metrics"]![metric]!.AsObject().Select(kv => (IReadOnlyList<string>)[kv.Key, kv.Value!["runs"]!.ToString(),
            .. Numbers.SelectMany(n => new[] { Cell(kv.Value[n], kv.Value[n + "_std"]), Cell(kv.Value[n + "_diff"], null) })]).ToList();

    public static void Write(JsonObject result, string outDir)
    {
        Directory.CreateDirectory(outDir);
        Checkpoints.AtomicFile.WriteAllText(Path.Combine(outDir, "compare.json"), result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        string[] header = ["strategy", "runs", .. Short.SelectMany(s => new[] { s, $"Δ{s}" })];
        var report = new Report("Continual-learning strategies compared");
        report.Section("What this shows").Paragraph($"ACC, BWT, FWT and forgetting of each input (mean ± std over seeds where it has several) and Δ = the difference from {result["baseline"]}. BWT < 0 means forgetting.");
        var md = new StringBuilder($"# Continual-learning strategies compared (baseline {result["baseline"]})\n");
        foreach (var (metric, _) in result["metrics"]!.AsObject())
        {
            var rows = Rows(result, metric);
            report.Section(metric.Replace('_', ' ')).Table(header, rows);
            md.Append($"\n## {metric}\n\n| {string.Join(" | ", header)} |\n|{string.Concat(header.Select(_ => "---|"))}\n");
            foreach (var r in rows) md.Append($"| {string.Join(" | ", r)} |\n");
        }
        Checkpoints.AtomicFile.WriteAllText(Path.Combine(outDir, "compare.md"), md.ToString());
        report.WriteHtml(Path.Combine(outDir, "report.html"));
    }
}
