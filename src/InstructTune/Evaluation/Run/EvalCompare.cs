using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Evaluation.Metrics;
using InstructTune.Reports;

namespace InstructTune.Evaluation.Run;

/// <summary>
/// <c>itune eval compare RUN_A RUN_B [...]</c>: several <c>eval run</c> folders (e.g. base vs tuned, LoRA vs QLoRA)
/// side by side. The first run is the baseline. For every metric the runs share: each run's mean with a bootstrap
/// 95 % interval, and each later run's difference from the baseline over the examples both evaluated (matched by
/// id) with a paired bootstrap 95 % interval (the same resampled examples for both runs; percentile method;
/// <c>--bootstrap</c> resamples, seeded). Per-task and per-level tables, SVG bar charts with the intervals as
/// whiskers, and the examples whose F1 changed most. Writes compare.json, compare.md and report.html.
/// </summary>
public static class EvalCompare
{
    public sealed record RunData(string Name, string Dir, Dictionary<string, JsonObject> Lines, List<string> Order);

    public static readonly string[] Metrics =
        ["em", "exact", "f1", "rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "gsm8k", "gsm8k_strict", "gsm8k_flexible",
         "choice_correct", "ll_correct", "ll_norm_correct", "ref_ppl"];

    public static RunData Read(string dir)
    {
        var path = Path.Combine(dir, EvalRunRecipe.PredictionsFile);
        if (!File.Exists(path)) throw new EvalInputException($"{dir}: no {EvalRunRecipe.PredictionsFile} (not an eval run folder)");
        var lines = new Dictionary<string, JsonObject>();
        var order = new List<string>();
        int n = 0;
        foreach (var text in File.ReadLines(path))
        {
            n++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonObject o;
            try { o = JsonNode.Parse(text) as JsonObject ?? throw new JsonException("not an object"); }
            catch (JsonException ex) { throw new EvalInputException($"{path}:{n}: {ex.Message}"); }
            var id = o["id"]?.GetValue<string>() ?? throw new EvalInputException($"{path}:{n}: id missing");
            if (lines.TryAdd(id, o)) order.Add(id);
        }
        if (lines.Count == 0) throw new EvalInputException($"{path}: no predictions");
        var name = Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/', '\\'));
        return new RunData(name, dir, lines, order);
    }

    private static double? Value(JsonObject line, string metric) =>
        line["metrics"]?[metric] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && EvalRunReport.Num(v) is var x && double.IsFinite(x) ? x : null;

    /// <summary>Percentile bootstrap interval of the mean of <paramref name="values"/> (95 %).</summary>
    public static (double Low, double High) BootstrapMean(IReadOnlyList<double> values, int resamples, int seed)
    {
        if (values.Count == 0) return (double.NaN, double.NaN);
        var rng = new Random(seed);
        var means = new double[resamples];
        for (int b = 0; b < resamples; b++)
        {
            double sum = 0;
            for (int i = 0; i < values.Count; i++) sum += values[rng.Next(values.Count)];
            means[b] = sum / values.Count;
        }
        Array.Sort(means);
        return (Percentile(means, 0.025), Percentile(means, 0.975));
    }

    // Linear interpolation between order statistics (numpy's default).
    private static double Percentile(double[] sorted, double q)
    {
        double pos = q * (sorted.Length - 1);
        int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }

    public static JsonObject Compare(IReadOnlyList<RunData> runs, int resamples, int seed)
    {
        if (runs.Count < 2) throw new EvalInputException("eval compare needs at least two run folders");
        // Folders with the same name (…/lora/out and …/qlora/out) keep apart by their position.
        if (runs.Select(r => r.Name).Distinct().Count() < runs.Count)
            runs = runs.Select((r, i) => r with { Name = $"{i + 1}:{r.Name}" }).ToList();
        if (resamples < 100) throw new EvalInputException($"--bootstrap {resamples}: use at least 100 resamples");
        var baseline = runs[0];
        var metrics = Metrics.Where(m => runs.All(r => r.Lines.Values.Any(l => Value(l, m) is not null))).ToList();
        var json = new JsonObject
        {
            ["runs"] = new JsonArray(runs.Select(r => (JsonNode?)new JsonObject { ["name"] = r.Name, ["dir"] = Path.GetFullPath(r.Dir), ["examples"] = r.Lines.Count }).ToArray()),
            ["baseline"] = baseline.Name,
            ["bootstrap"] = new JsonObject { ["resamples"] = resamples, ["seed"] = seed, ["interval"] = "95 % percentile" },
        };
        var perMetric = new JsonObject();
        foreach (var m in metrics)
        {
            var entry = new JsonObject();
            foreach (var r in runs)
            {
                var values = r.Order.Select(id => Value(r.Lines[id], m)).Where(v => v is not null).Select(v => v!.Value).ToList();
                var (lo, hi) = BootstrapMean(values, resamples, seed);
                var o = new JsonObject { ["mean"] = values.Count > 0 ? values.Average() : null, ["ci_low"] = lo, ["ci_high"] = hi, ["count"] = values.Count };
                if (r != baseline)
                {
                    var common = baseline.Order.Where(id => r.Lines.ContainsKey(id)
                        && Value(baseline.Lines[id], m) is not null && Value(r.Lines[id], m) is not null).ToList();
                    var diffs = common.Select(id => Value(r.Lines[id], m)!.Value - Value(baseline.Lines[id], m)!.Value).ToList();
                    var (dlo, dhi) = BootstrapMean(diffs, resamples, seed);
                    o["diff"] = diffs.Count > 0 ? diffs.Average() : null;
                    o["diff_ci_low"] = dlo;
                    o["diff_ci_high"] = dhi;
                    o["paired_examples"] = diffs.Count;
                }
                entry[r.Name] = o;
            }
            perMetric[m] = entry;
        }
        json["metrics"] = perMetric;
        foreach (var (key, field) in new[] { ("by_task", "task"), ("by_level", "level") })
        {
            var groups = new JsonObject();
            var names = runs.SelectMany(r => r.Lines.Values.Select(l => l[field]?.GetValue<string>())).Where(g => g is not null).Distinct().Order(StringComparer.Ordinal).ToList();
            foreach (var g in names)
            {
                var row = new JsonObject();
                foreach (var r in runs)
                {
                    var ls = r.Lines.Values.Where(l => l[field]?.GetValue<string>() == g).ToList();
                    var cell = new JsonObject { ["count"] = ls.Count };
                    foreach (var m in metrics)
                    {
                        var vs = ls.Select(l => Value(l, m)).Where(v => v is not null).Select(v => v!.Value).ToList();
                        if (vs.Count > 0) cell[m] = vs.Average();
                    }
                    row[r.Name] = cell;
                }
                groups[g!] = row;
            }
            json[key] = groups;
        }
        var changed = new JsonArray();
        foreach (var r in runs.Skip(1))
        {
            var common = baseline.Order.Where(r.Lines.ContainsKey).ToList();
            foreach (var id in common.OrderByDescending(id => Math.Abs((Value(r.Lines[id], "f1") ?? 0) - (Value(baseline.Lines[id], "f1") ?? 0)))
                         .ThenBy(id => id, StringComparer.Ordinal).Take(10))
            {
                var a = baseline.Lines[id];
                var b = r.Lines[id];
                double delta = (Value(b, "f1") ?? 0) - (Value(a, "f1") ?? 0);
                if (delta == 0) break;
                changed.Add(new JsonObject
                {
                    ["run"] = r.Name, ["id"] = id, ["task"] = a["task"]?.GetValue<string>(), ["reference"] = a["reference"]?.GetValue<string>(),
                    ["baseline_prediction"] = a["prediction"]?.GetValue<string>(), ["prediction"] = b["prediction"]?.GetValue<string>(), ["f1_change"] = delta,
                });
            }
        }
        json["changed_most"] = changed;
        return json;
    }

    public static void Write(JsonObject result, string outDir)
    {
        Directory.CreateDirectory(outDir);
        AtomicFile.WriteAllText(Path.Combine(outDir, "compare.json"), result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var report = Build(result);
        report.WriteMarkdown(Path.Combine(outDir, "compare.md"));
        report.WriteHtml(Path.Combine(outDir, "report.html"));
    }

    private static string F(JsonNode? n, string f = "0.000") =>
        n is JsonValue v && v.GetValueKind() == JsonValueKind.Number && EvalRunReport.Num(v) is var x && double.IsFinite(x) ? x.ToString(f, CultureInfo.InvariantCulture) : "–";

    public static Report Build(JsonObject result)
    {
        var runs = result["runs"]!.AsArray().Select(r => r!["name"]!.GetValue<string>()).ToList();
        var baseline = result["baseline"]!.GetValue<string>();
        var report = new Report($"Comparison · {string.Join(" vs ", runs)}");
        var b = result["bootstrap"]!;
        report.Section("Runs").Table(["run", "folder", "examples"], result["runs"]!.AsArray().Select(r =>
            (IReadOnlyList<string>)[r!["name"]!.GetValue<string>(), r["dir"]!.GetValue<string>(), r["examples"]!.ToJsonString()]))
            .Paragraph($"Baseline: {baseline}. Intervals: {b["interval"]} bootstrap, {b["resamples"]} resamples (seed {b["seed"]}); " +
                       "differences are paired over the examples both runs evaluated (matched by id). ref_ppl: lower is better; every other metric: higher is better.");
        var metrics = result["metrics"]!.AsObject();
        var overview = report.Section("Metrics");
        foreach (var (m, entry) in metrics)
        {
            string fmt = m is "bleu" or "ref_ppl" ? "0.00" : "0.000";
            overview.Paragraph($"Metric {m}:");
            overview.Table(["run", "mean", "95 % CI", $"Δ vs {baseline}", "Δ 95 % CI", "paired examples"], runs.Select(r =>
            {
                var o = entry![r]!;
                return (IReadOnlyList<string>)[r, F(o["mean"], fmt), $"[{F(o["ci_low"], fmt)}, {F(o["ci_high"], fmt)}]",
                    o["diff"] is null ? "–" : F(o["diff"], "+" + fmt + ";−" + fmt), o["diff"] is null ? "–" : $"[{F(o["diff_ci_low"], fmt)}, {F(o["diff_ci_high"], fmt)}]",
                    o["paired_examples"]?.ToJsonString() ?? "–"];
            }));
        }
        var chartMetrics = metrics.Select(kv => kv.Key).Where(m => m is not ("bleu" or "ref_ppl")).ToList();
        if (chartMetrics.Count > 0)
            overview.Bar(new BarChart("Means with 95 % bootstrap intervals", "score", chartMetrics, runs.Select(r =>
                (r, (IReadOnlyList<Bar>)chartMetrics.Select(m =>
                {
                    var o = metrics[m]![r]!;
                    return new Bar(EvalRunReport.Num(o["mean"]!), EvalRunReport.Num(o["ci_low"]!), EvalRunReport.Num(o["ci_high"]!));
                }).ToList())).ToList()).Validate());

        foreach (var (title, key) in new[] { ("By task", "by_task"), ("By complexity level", "by_level") })
        {
            var groups = result[key]!.AsObject();
            if (groups.Count == 0) continue;
            var section = report.Section(title);
            foreach (var m in new[] { "em", "f1", "exact", "gsm8k" }.Where(metrics.ContainsKey))
            {
                section.Paragraph($"Metric {m}:");
                section.Table(["group", .. runs], groups.Select(g => (IReadOnlyList<string>)[g.Key, .. runs.Select(r => F(g.Value![r]?[m]))]));
            }
            if (metrics.ContainsKey("f1") && groups.Count <= 40)
                section.Bar(new BarChart($"{title}: F1", "F1", groups.Select(g => g.Key).ToList(),
                    runs.Select(r => (r, (IReadOnlyList<Bar>)groups.Select(g => new Bar(g.Value![r]?["f1"] is { } x ? EvalRunReport.Num(x) : 0)).ToList())).ToList()).Validate());
        }
        var changed = result["changed_most"]!.AsArray();
        if (changed.Count > 0)
            report.Section("Examples that changed most (F1)").Table(["run", "id", "reference", baseline, "prediction", "Δ F1"], changed.Select(c =>
                (IReadOnlyList<string>)[c!["run"]!.GetValue<string>(), c["id"]!.GetValue<string>(), Clip(c["reference"]?.GetValue<string>()),
                    Clip(c["baseline_prediction"]?.GetValue<string>()), Clip(c["prediction"]?.GetValue<string>()), F(c["f1_change"], "+0.000;−0.000")]));
        return report;
    }

    private static string Clip(string? s) => s is null ? "" : s.Length <= 200 ? s : s[..200] + "…";
}
