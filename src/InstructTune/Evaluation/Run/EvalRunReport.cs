using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Evaluation.Complexity;
using InstructTune.Evaluation.Metrics;
using InstructTune.Reports;

namespace InstructTune.Evaluation.Run;

/// <summary>
/// results.json, summary.md and report.html of <c>itune eval run</c>: means of every per-example metric (each over
/// the examples that have it), corpus BLEU, the reference perplexity (token-weighted over the run, and the mean of
/// the per-example values), and the same means per task and per complexity level.
/// </summary>
public static class EvalRunReport
{
    public const string PerplexityDefinition =
        "Reference perplexity: for each example, exp(−(1/N)·Σ log p(tᵢ | prompt, t₁…tᵢ₋₁)) over the N tokens of its " +
        "reference answer (prefixed with reference_prefix), given the formatted prompt the model was generating from; " +
        "prompt tokens are not scored. Tokens are split as lm-evaluation-harness does: the prompt's trailing whitespace " +
        "moves to the reference, prompt+reference is encoded once, and the reference's tokens are those after the " +
        "prompt's own encoding. ref_ppl_corpus is exp(−Σ log p / Σ N) over all examples; ref_ppl_mean averages the " +
        "per-example values. The same numbers come out of `itune score` on the token ids prompt+reference (mean of " +
        "next_token_logprobs from the first reference token on).";

    public static JsonObject Aggregate(IReadOnlyList<EvalExample> examples, IReadOnlyList<JsonObject> lines, JsonObject settings)
    {
        var results = new JsonObject
        {
            ["run"] = settings.DeepClone(),
            ["count"] = lines.Count,
            ["metrics"] = Means(lines),
        };
        var bleu = Bleu.Corpus(lines.Select(l => l["prediction"]!.GetValue<string>()).ToList(),
            examples.Select(e => e.References).ToList());
        results["corpus_bleu"] = bleu.Score;
        long tokens = 0;
        double logprob = 0;
        foreach (var l in lines)
            if (l["metrics"]?["ref_tokens"] is JsonNode n) { tokens += (long)Num(n); logprob += Num(l["metrics"]!["ref_logprob"]!); }
        if (tokens > 0)
        {
            results["reference_perplexity"] = new JsonObject
            {
                ["ref_ppl_corpus"] = Math.Exp(-logprob / tokens),
                ["ref_ppl_mean"] = results["metrics"]!["ref_ppl"] is { } mean ? Num(mean) : null,
                ["tokens"] = tokens,
                ["mean_logprob"] = logprob / tokens,
                ["definition"] = PerplexityDefinition,
            };
        }
        var byTask = new JsonObject();
        foreach (var g in lines.GroupBy(l => l["task"]?.GetValue<string>() ?? "").OrderBy(g => g.Key, StringComparer.Ordinal))
            byTask[g.Key] = Means(g.ToList());
        results["by_task"] = byTask;
        var level = examples.ToDictionary(e => e.Id, Level);
        var byLevel = new JsonObject();
        foreach (var g in lines.GroupBy(l => level[l["id"]!.GetValue<string>()]).OrderBy(g => LevelOrder(g.Key)))
            byLevel[g.Key] = Means(g.ToList());
        results["by_level"] = byLevel;
        var checks = lines.SelectMany(l => l["metrics"]?["constraints"] is JsonArray a ? a.OfType<JsonObject>() : []).ToList();
        if (checks.Count > 0)
        {
            var byKind = new JsonObject();
            foreach (var g in checks.GroupBy(c => c["kind"]!.GetValue<string>()).OrderBy(g => g.Key, StringComparer.Ordinal))
                byKind[g.Key] = new JsonObject { ["kept"] = g.Count(c => c["kept"]!.GetValue<bool>()), ["total"] = g.Count() };
            results["fidelity"] = new JsonObject
            {
                ["examples_with_constraints"] = lines.Count(l => l["metrics"]?["fidelity"] is not null),
                ["constraints"] = checks.Count,
                ["kept"] = checks.Count(c => c["kept"]!.GetValue<bool>()),
                ["by_kind"] = byKind,
            };
        }
        var tokenCounts = lines.Sum(l => l["tokens"]?["generated"] is { } t ? (long)Num(t) : 0);
        if (tokenCounts > 0) results["generated_tokens"] = tokenCounts;
        return results;
    }

    /// <summary>simple / conditional / multi-step: the record's own level when it has one, else
    /// <see cref="ComplexityClassifier"/> on the instruction.</summary>
    public static string Level(EvalExample e)
    {
        var level = e.Record.Complexity switch
        {
            0 => ComplexityLevel.Simple,
            1 => ComplexityLevel.Conditional,
            2 => ComplexityLevel.MultiStep,
            _ => ComplexityClassifier.Classify(e.Record.Instruction),
        };
        return level switch { ComplexityLevel.Simple => "simple", ComplexityLevel.Conditional => "conditional", _ => "multi-step" };
    }

    private static int LevelOrder(string l) => l switch { "simple" => 0, "conditional" => 1, _ => 2 };

    private static JsonObject Means(IReadOnlyList<JsonObject> lines)
    {
        var o = new JsonObject { ["count"] = lines.Count };
        foreach (var key in ExampleMetrics.MeanKeys)
        {
            double sum = 0;
            int n = 0;
            foreach (var l in lines)
                if (l["metrics"]?[key] is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
                {
                    var x = Num(v);
                    if (double.IsFinite(x)) { sum += x; n++; }
                }
            if (n > 0) o[key] = sum / n;
        }
        return o;
    }

    /// <summary>A JSON number as a double, whether it was written as an integer or not.</summary>
    public static double Num(JsonNode n) => double.Parse(n.ToJsonString(), CultureInfo.InvariantCulture);

    public static void Write(JsonObject results, IReadOnlyList<JsonObject> lines, string dir)
    {
        AtomicFile.WriteAllText(Path.Combine(dir, "results.json"), results.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var report = Build(results, lines);
        report.WriteMarkdown(Path.Combine(dir, "summary.md"));
        report.WriteHtml(Path.Combine(dir, "report.html"));
    }

    private static string F(JsonNode? n, string format = "0.000") =>
        n is JsonValue v && v.GetValueKind() == JsonValueKind.Number
            && double.IsFinite(Num(v)) ? Num(v).ToString(format, CultureInfo.InvariantCulture) : "–";

    public static Report Build(JsonObject results, IReadOnlyList<JsonObject> lines)
    {
        var run = results["run"]!.AsObject();
        var report = new Report($"Evaluation · {Path.GetFileName(run["data"]?.GetValue<string>() ?? "")}");
        report.Section("Run").Table(["setting", "value"], run.Where(kv => kv.Value is not null)
            .Select(kv => (IReadOnlyList<string>)[kv.Key, kv.Value is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : kv.Value!.ToJsonString()]));

        var metrics = results["metrics"]!.AsObject();
        var scores = report.Section("Scores");
        var rows = ExampleMetrics.MeanKeys.Where(metrics.ContainsKey).Select(k => (IReadOnlyList<string>)[k, F(metrics[k], k is "bleu" or "ref_ppl" ? "0.00" : "0.000")]).ToList();
        rows.Add(["corpus_bleu", F(results["corpus_bleu"], "0.00")]);
        if (results["reference_perplexity"] is JsonObject ppl)
        {
            rows.Add(["ref_ppl_corpus", F(ppl["ref_ppl_corpus"], "0.###")]);
            rows.Add(["reference tokens scored", ppl["tokens"]!.ToJsonString()]);
        }
        rows.Add(["examples", results["count"]!.ToJsonString()]);
        scores.Table(["metric", "value"], rows);
        scores.Paragraph("em / f1: SQuAD v1.1 (lowercase, no punctuation or articles, max over references); exact: equal after trimming " +
                         "whitespace; rouge*: rouge_score F-measure; bleu: sacreBLEU sentence BLEU (13a, exp smoothing), corpus_bleu over all " +
                         "examples; gsm8k: openai/grade-school-math answer rule (#### n, commas removed); gsm8k_strict / gsm8k_flexible: " +
                         "lm-evaluation-harness filters (first #### n / last number) with its exact_match normalisation; choice_correct: the " +
                         "option letter read from the output; ll_correct / ll_norm_correct: lm-evaluation-harness log-likelihood choice " +
                         "(sum of the option's token log-probs / divided by its characters).");
        if (results["reference_perplexity"] is not null) scores.Paragraph(PerplexityDefinition);

        foreach (var (title, key) in new[] { ("By task", "by_task"), ("By complexity level", "by_level") })
        {
            var groups = results[key]!.AsObject();
            if (groups.Count == 0) continue;
            var cols = new[] { "em", "exact", "f1", "rougeL", "bleu", "gsm8k", "choice_correct", "ll_correct", "ref_ppl" }
                .Where(c => groups.Any(g => g.Value![c] is not null)).ToList();
            var section = report.Section(title);
            section.Table(["group", "count", .. cols], groups.Select(g =>
                (IReadOnlyList<string>)[g.Key, g.Value!["count"]!.ToJsonString(), .. cols.Select(c => F(g.Value![c], c is "bleu" or "ref_ppl" ? "0.00" : "0.000"))]));
            if (groups.Count > 1 && groups.Count <= 40)
                section.Bar(new BarChart($"{title}: EM and F1", "score", groups.Select(g => g.Key).ToList(),
                [
                    ("em", groups.Select(g => new Bar(g.Value!["em"] is { } x ? Num(x) : 0)).ToList()),
                    ("f1", groups.Select(g => new Bar(g.Value!["f1"] is { } x ? Num(x) : 0)).ToList()),
                ]).Validate());
        }

        if (results["fidelity"] is JsonObject fid)
        {
            var section = report.Section("Instruction fidelity");
            section.Paragraph($"{fid["examples_with_constraints"]} example(s) carry checkable constraints ({fid["constraints"]} in all, {fid["kept"]} kept); " +
                              "fidelity = share of an example's constraints its prediction keeps. Constraints are found by rules on the " +
                              "instruction's wording (docs/ARCHITECTURE.md, \"The evaluation framework on your data\"); what no rule recognises is not checked.");
            section.Table(["constraint kind", "kept", "total", "rate"], fid["by_kind"]!.AsObject().Select(kv =>
            {
                int kept = kv.Value!["kept"]!.GetValue<int>(), total = kv.Value!["total"]!.GetValue<int>();
                return (IReadOnlyList<string>)[kv.Key, kept.ToString(CultureInfo.InvariantCulture), total.ToString(CultureInfo.InvariantCulture),
                    (kept / (double)total).ToString("0.000", CultureInfo.InvariantCulture)];
            }));
        }
        if (results["multi_turn"] is JsonObject mt)
        {
            var section = report.Section("Multi-turn coherence");
            section.Table(["dimension", "score", "chance / neutral"],
            [
                ["contextual relevance", F(mt["relevance"]), "0"],
                ["consistency", F(mt["consistency"]), "0"],
                ["logical progression", F(mt["progression"]), F(mt["progression_chance"])],
                ["task completion (F1)", F(mt["completion"]), "0"],
            ]);
            section.Paragraph($"{mt["conversations"]} conversation(s), {mt["turns"]} assistant turn(s); embeddings: {mt["embedder"]?.GetValue<string>()}.");
            section.Paragraph(mt["definition"]!.GetValue<string>());
            section.Table(["conversation", "relevance", "consistency", "progression", "completion", "last reply", "re-asked reply"],
                mt["by_conversation"]!.AsArray().OfType<JsonObject>().Take(50).Select(c => (IReadOnlyList<string>)
                [
                    c["id"]!.GetValue<string>(), F(c["relevance"]), F(c["consistency"]), F(c["progression"]), F(c["completion"]),
                    Clip(c["turns"]!.AsArray()[^1]!["reply"]!.GetValue<string>()), Clip(c["reasked_reply"]!.GetValue<string>()),
                ]));
        }

        if (results["robustness"] is JsonObject rb)
        {
            var section = report.Section("Robustness to paraphrase");
            section.Table(["measure", "value"],
            [
                ["examples", rb["examples"]!.ToJsonString()], ["phrasings answered", rb["phrasings"]!.ToJsonString()],
                ["mean F1 over all phrasings", F(rb["mean"])], ["mean per-example std", F(rb["mean_std"])],
                ["mean worst drop", F(rb["mean_worst_drop"])], ["largest worst drop", F(rb["max_worst_drop"])],
                ["back-translation", rb["back_translation"]?.GetValue<string>() ?? "off (no --back-translate endpoint)"],
            ]);
            var kinds = rb["by_kind"]!.AsObject();
            if (kinds.Count > 1)
                section.Bar(new BarChart("Mean F1 by kind of phrasing", "F1", kinds.Select(k => k.Key).ToList(),
                    [("F1", kinds.Select(k => new Bar(k.Value is { } v ? Num(v) : 0)).ToList())]).Validate());
            section.Paragraph(rb["definition"]!.GetValue<string>());
            section.Table(["example", "kind", "instruction", "output", "F1"], rb["by_example"]!.AsArray().OfType<JsonObject>().Take(10)
                .SelectMany(e => e["variants"]!.AsArray().OfType<JsonObject>().Select(v => (IReadOnlyList<string>)
                    [e["id"]!.GetValue<string>(), v["kind"]!.GetValue<string>(), Clip(v["instruction"]!.GetValue<string>()), Clip(v["output"]!.GetValue<string>()), F(v["f1"])])));
        }

        if (results["few_shot"] is JsonObject fs)
        {
            var section = report.Section("Zero-/few-shot curves and cross-task generalisation");
            var byK = fs["by_k"]!.AsArray().OfType<JsonObject>().ToList();
            List<(double X, double Y)> Points(string key) =>
                byK.Where(r => r[key] is not null).Select(r => ((double)r["k"]!.GetValue<int>(), Num(r[key]!))).ToList();
            var series = new[] { ("seen tasks", "seen"), ("held-out tasks", "held_out"), ("held-out, in-cluster", "in_cluster"), ("held-out, cross-cluster", "cross_cluster") }
                .Select(x => new Series(x.Item1, Points(x.Item2))).Where(x => x.Points.Count > 0).ToList();
            if (series.Count > 0) section.Line(new LineChart("Token F1 by examples in the prompt", "k (examples in the prompt)", "F1", series));
            section.Table(["k", "seen", "held-out", "seen − held-out", "in-cluster", "cross-cluster", "cross-task drop", "seen / held-out examples"], byK.Select(r =>
                (IReadOnlyList<string>)[r["k"]!.ToJsonString(), F(r["seen"]), F(r["held_out"]), F(r["seen_minus_held_out"]), F(r["in_cluster"]), F(r["cross_cluster"]),
                    F(r["cross_task_drop"]), $"{r["seen_count"]} / {r["held_out_count"]}"]));
            section.Paragraph($"{fs["examples"]} evaluated examples ({fs["seen_tasks"]} seen and {fs["held_out_tasks"]} held-out tasks, {fs["clusters"]} clusters); examples drawn from {fs["train_file"]?.GetValue<string>()} ({fs["train_examples"]} records).");
            section.Paragraph(fs["definition"]!.GetValue<string>());
        }

        var worst = lines.OrderBy(l => Num(l["metrics"]!["f1"]!)).Take(10).ToList();
        report.Section("Lowest-F1 examples").Table(["id", "task", "reference", "prediction", "f1"], worst.Select(l =>
            (IReadOnlyList<string>)[l["id"]!.GetValue<string>(), l["task"]?.GetValue<string>() ?? "", Clip(l["reference"]!.GetValue<string>()),
                Clip(l["prediction"]!.GetValue<string>()), F(l["metrics"]!["f1"])]));
        return report;
    }

    private static string Clip(string s) => s.Length <= 300 ? s : s[..300] + "…";
}
