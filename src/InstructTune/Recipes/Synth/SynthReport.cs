// The outputs of a data-generation run, all written atomically: data.jsonl (accepted, alpaca fields + provenance),
// review.jsonl (flagged for a person: `itune synth review`), rejected.jsonl (with reasons), report.json (funnel,
// token usage per stage, length and complexity distributions) and report.html (the same, with charts and examples).
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Common;
using InstructTune.Reports;

namespace InstructTune.Recipes.Synth;

public static class SynthReport
{
    public static JsonObject Write(SynthRun run, string method, IReadOnlyList<SynthRecord> accepted, IReadOnlyList<SynthRecord> flagged,
        IReadOnlyList<SynthRecord> rejected, JsonObject? extra = null)
    {
        var dir = run.OutDir;
        SynthRun.WriteJsonl(Path.Combine(dir, "data.jsonl"), accepted);
        SynthRun.WriteJsonl(Path.Combine(dir, "review.jsonl"), flagged);
        SynthRun.WriteJsonl(Path.Combine(dir, "rejected.jsonl"), rejected);
        var (sent, fromJournal, failed, pt, ctoks) = run.Endpoint.Totals();
        var json = new JsonObject
        {
            ["method"] = method,
            ["endpoint"] = run.Config.Endpoint,
            ["prompt_format"] = run.LocalFormat,
            ["seed"] = run.Config.Seed,
            ["accepted"] = accepted.Count,
            ["flagged"] = flagged.Count,
            ["rejected"] = rejected.Count,
            ["funnel"] = run.Funnel.ToJson(),
            ["rejected_by_reason"] = Counts(rejected.SelectMany(r => r.Reasons.Take(1))),
            ["flagged_by_reason"] = Counts(flagged.SelectMany(r => r.Reasons)),
            ["requests"] = new JsonObject { ["sent"] = sent, ["from_journal"] = fromJournal, ["failed"] = failed, ["prompt_tokens"] = pt, ["completion_tokens"] = ctoks, ["cost"] = run.Cost(pt, ctoks) },
            ["usage_by_stage"] = run.UsageJson(),
            ["instruction_words"] = Histogram(accepted.Select(r => Words(r.Instruction))),
            ["output_words"] = Histogram(accepted.Select(r => Words(r.Output))),
            ["complexity"] = Counts(accepted.Select(r => r.Complexity ?? "unknown")),
        };
        if (extra is not null) foreach (var (k, v) in extra) json[k] = v?.DeepClone();
        OutputFile.WriteAllText(Path.Combine(dir, "report.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Html(run, method, json, accepted, flagged, rejected).WriteHtml(Path.Combine(dir, "report.html"));
        return json;
    }

    private static int Words(string s) => s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;

    private static JsonObject Counts(IEnumerable<string> keys)
    {
        var o = new JsonObject();
        foreach (var g in keys.GroupBy(k => k).OrderBy(g => g.Key, StringComparer.Ordinal)) o[g.Key] = g.Count();
        return o;
    }

    // Word-count buckets: 0-4, 5-9, 10-19, 20-49, 50-99, 100+.
    private static readonly (string Name, int Lo, int Hi)[] Buckets = [("0-4", 0, 4), ("5-9", 5, 9), ("10-19", 10, 19), ("20-49", 20, 49), ("50-99", 50, 99), ("100+", 100, int.MaxValue)];

    private static JsonObject Histogram(IEnumerable<int> values)
    {
        var list = values.ToList();
        var o = new JsonObject();
        foreach (var (name, lo, hi) in Buckets) o[name] = list.Count(v => v >= lo && v <= hi);
        return o;
    }

    private static Report Html(SynthRun run, string method, JsonObject json, IReadOnlyList<SynthRecord> accepted,
        IReadOnlyList<SynthRecord> flagged, IReadOnlyList<SynthRecord> rejected)
    {
        var report = new Report($"itune synth {method}");
        report.Section("Summary").Paragraph($"Endpoint {run.Config.Endpoint}, seed {run.Config.Seed}: {accepted.Count} accepted, " +
                                            $"{flagged.Count} flagged for review, {rejected.Count} rejected.");
        var funnel = run.Funnel.Items;
        var fs = report.Section("Filter funnel").Table(["stage / filter", "count"], funnel.Select(x => (IReadOnlyList<string>)[x.Name, x.Count.ToString()]));
        if (funnel.Count > 0)
            fs.Bar(new BarChart("Funnel", "count", funnel.Select(x => x.Name).ToList(),
                [("count", funnel.Select(x => new Bar(x.Count)).ToList())]).Validate());
        var usage = run.Endpoint.Usage.OrderBy(x => x.Key, StringComparer.Ordinal).ToList();
        report.Section("Requests, tokens and cost per stage").Table(["stage", "sent", "from journal", "failed", "prompt tokens", "completion tokens", "cost"],
            usage.Select(x => (IReadOnlyList<string>)[x.Key, x.Value.Sent.ToString(), x.Value.FromJournal.ToString(), x.Value.Failed.ToString(),
                x.Value.PromptTokens.ToString(), x.Value.CompletionTokens.ToString(), run.Cost(x.Value.PromptTokens, x.Value.CompletionTokens).ToString("0.######")]));
        var words = (JsonObject)json["instruction_words"]!;
        var outWords = (JsonObject)json["output_words"]!;
        report.Section("Length distribution (words)").Bar(new BarChart("Accepted examples by length", "examples", Buckets.Select(b => b.Name).ToList(),
            [("instruction", Buckets.Select(b => new Bar((int)words[b.Name]!)).ToList()),
             ("output", Buckets.Select(b => new Bar((int)outWords[b.Name]!)).ToList())]).Validate());
        var cx = (JsonObject)json["complexity"]!;
        if (cx.Count > 0)
            report.Section("Complexity").Bar(new BarChart("Accepted examples by complexity", "examples", cx.Select(p => p.Key).ToList(),
                [("accepted", cx.Select(p => new Bar((int)p.Value!)).ToList())]).Validate());
        var ex = report.Section("Examples");
        ex.Table(["kind", "id", "instruction", "input", "output", "reasons"],
            accepted.Take(5).Select(r => Row("accepted", r))
                .Concat(flagged.Take(5).Select(r => Row("flagged", r)))
                .Concat(rejected.GroupBy(r => r.Reasons.FirstOrDefault() ?? "").SelectMany(g => g.Take(2)).Select(r => Row("rejected", r))));
        return report;

        static IReadOnlyList<string> Row(string kind, SynthRecord r) =>
            [kind, r.Id, Clip(r.Instruction), Clip(r.Input), Clip(r.Output), string.Join(", ", r.Reasons)];
    }

    private static string Clip(string s) => s.Length <= 200 ? s : s[..200] + "…";
}
