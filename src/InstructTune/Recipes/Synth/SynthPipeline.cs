// The last stage shared by the generation recipes: quality control (while synth.refine is on) splits the generated
// records into accepted / flagged / rejected; decisions already made in `itune synth review` (review_decisions.jsonl)
// are applied; then the outputs and the report are written.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace InstructTune.Recipes.Synth;

public static class SynthPipeline
{
    public static JsonObject Finish(SynthRun run, string method, List<SynthRecord> generated, List<SynthRecord> rejected, CancellationToken ct,
        JsonObject? extra = null)
    {
        List<SynthRecord> accepted = generated, flagged = [];
        if (run.Config.Refine && generated.Count > 0)
        {
            var refined = RefineRecipe.Run(run, generated, ct);
            (accepted, flagged) = (refined.Accepted, refined.Flagged);
            rejected = [.. rejected, .. refined.Rejected];
        }
        return Write(run, method, accepted, flagged, rejected, extra);
    }

    /// <summary>Writes the outputs after applying the review decisions on file: a flagged record a person accepted
    /// moves to data.jsonl, one they rejected to rejected.jsonl (reason review_rejected).</summary>
    public static JsonObject Write(SynthRun run, string method, List<SynthRecord> accepted, List<SynthRecord> flagged,
        List<SynthRecord> rejected, JsonObject? extra = null)
    {
        var decisions = ReviewDecisions.Read(Path.Combine(run.OutDir, ReviewDecisions.FileName));
        var stillFlagged = new List<SynthRecord>();
        foreach (var r in flagged)
        {
            if (!decisions.TryGetValue(r.Id, out var d)) { stillFlagged.Add(r); continue; }
            if (d == "accept") accepted = [.. accepted, r];
            else { r.Reasons.Insert(0, "review_rejected"); rejected = [.. rejected, r]; }
        }
        return SynthReport.Write(run, method, accepted, stillFlagged, rejected, extra);
    }
}

/// <summary>review_decisions.jsonl: one {"id", "decision": "accept"|"reject"} line per reviewed item, appended and
/// flushed as the person decides (the last decision for an id wins; a torn line is skipped).</summary>
public static class ReviewDecisions
{
    public const string FileName = "review_decisions.jsonl";

    public static Dictionary<string, string> Read(string path)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!File.Exists(path)) return map;
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                var e = JsonDocument.Parse(line).RootElement;
                if (e.TryGetProperty("id", out var id) && e.TryGetProperty("decision", out var d) && d.GetString() is "accept" or "reject")
                    map[id.GetString()!] = d.GetString()!;
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException) { }
        }
        return map;
    }

    public static void Append(string path, string id, string decision)
    {
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        stream.Write(System.Text.Encoding.UTF8.GetBytes(new JsonObject { ["id"] = id, ["decision"] = decision }.ToJsonString() + "\n"));
        stream.Flush(flushToDisk: true);
    }
}
