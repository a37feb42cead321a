using System.Text.Json;
using System.Text.Json.Nodes;

namespace InstructTune.Tests.Evaluation.Run;

/// <summary>
/// `itune eval compare` on two `eval run --predictions` folders over the golden held-out file, the second with every
/// third prediction replaced by its reference: the differences equal the paired means computed here from the two
/// predictions files, the 95 % bootstrap interval contains them and is as wide as the normal approximation says,
/// the examples that changed most are ones that were replaced, and the same seed gives the same report.
/// </summary>
[Collection("Console")]
public sealed class EvalCompareTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("itune-evalcompare").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Run(string name, string predictions)
    {
        var outDir = Path.Combine(_dir, name);
        var (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--data", TestPaths.Fixtures("eval", "run", "heldout.jsonl"), "--format", "alpaca",
            "--predictions", predictions, "--out", outDir);
        Assert.True(rc == 0, err);
        return outDir;
    }

    private static Dictionary<string, JsonNode> Lines(string dir) =>
        File.ReadLines(Path.Combine(dir, "predictions.jsonl")).Select(l => JsonNode.Parse(l)!).ToDictionary(l => l["id"]!.GetValue<string>());

    [Fact]
    public void DifferencesAndIntervalsMatchThePairedExamples()
    {
        var a = Run("base", TestPaths.Fixtures("eval", "run", "heldout_predictions.jsonl"));
        var references = File.ReadLines(TestPaths.Fixtures("eval", "run", "heldout.jsonl")).Select(l => JsonNode.Parse(l)!)
            .ToDictionary(l => l["id"]!.GetValue<string>(), l => l["output"]!.GetValue<string>());
        var improved = Path.Combine(_dir, "improved.jsonl");
        var replaced = new HashSet<string>();
        File.WriteAllLines(improved, File.ReadLines(TestPaths.Fixtures("eval", "run", "heldout_predictions.jsonl")).Select((l, i) =>
        {
            var o = JsonNode.Parse(l)!.AsObject();
            if (i % 3 == 0) { o["prediction"] = references[o["id"]!.GetValue<string>()]; replaced.Add(o["id"]!.GetValue<string>()); }
            return o.ToJsonString();
        }));
        var b = Run("tuned", improved);

        var outDir = Path.Combine(_dir, "cmp");
        var (rc, stdout, err) = Evaluation.CliCapture.Run("eval", "compare", a, b, "--out", outDir, "--seed", "5");
        Assert.True(rc == 0, err);
        Assert.Contains("em: tuned − base = +", stdout);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "compare.json")))!;

        var la = Lines(a);
        var lb = Lines(b);
        foreach (var m in new[] { "em", "f1", "rougeL" })
        {
            var diffs = la.Keys.Select(id => lb[id]["metrics"]![m]!.GetValue<double>() - la[id]["metrics"]![m]!.GetValue<double>()).ToList();
            double mean = diffs.Average(), sd = Math.Sqrt(diffs.Sum(d => (d - mean) * (d - mean)) / (diffs.Count - 1));
            var o = json["metrics"]![m]!["tuned"]!;
            Assert.Equal(mean, o["diff"]!.GetValue<double>(), 12);
            Assert.True(mean > 0);
            double lo = o["diff_ci_low"]!.GetValue<double>(), hi = o["diff_ci_high"]!.GetValue<double>();
            Assert.InRange(mean, lo, hi);
            double normalWidth = 2 * 1.96 * sd / Math.Sqrt(diffs.Count);
            Assert.InRange(hi - lo, 0.8 * normalWidth, 1.2 * normalWidth);
            Assert.Equal(la.Values.Average(l => l["metrics"]![m]!.GetValue<double>()), json["metrics"]![m]!["base"]!["mean"]!.GetValue<double>(), 12);
        }
        var changed = json["changed_most"]!.AsArray();
        Assert.NotEmpty(changed);
        Assert.All(changed, c => Assert.Contains(c!["id"]!.GetValue<string>(), replaced));
        Assert.True(changed[0]!["f1_change"]!.GetValue<double>() > 0);
        Assert.NotNull(json["by_task"]!["heldout"]);
        Assert.NotNull(json["by_level"]!["simple"]);
        var html = File.ReadAllText(Path.Combine(outDir, "report.html"));
        Assert.Contains("<svg", html);
        Assert.Contains("Examples that changed most", html);
        Assert.True(File.Exists(Path.Combine(outDir, "compare.md")));

        // Seeded: the same report again.
        var again = Path.Combine(_dir, "cmp2");
        (rc, _, err) = Evaluation.CliCapture.Run("eval", "compare", a, b, "--out", again, "--seed", "5");
        Assert.True(rc == 0, err);
        Assert.Equal(JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "compare.json")))!["metrics"]!.ToJsonString(),
            JsonNode.Parse(File.ReadAllText(Path.Combine(again, "compare.json")))!["metrics"]!.ToJsonString());

        // One run, or a folder that is not a run: exit 2.
        (rc, _, err) = Evaluation.CliCapture.Run("eval", "compare", a, "--out", again);
        Assert.Equal(2, rc);
        Assert.Contains("at least two", err);
        (rc, _, err) = Evaluation.CliCapture.Run("eval", "compare", a, _dir, "--out", again);
        Assert.Equal(2, rc);
        Assert.Contains("not an eval run folder", err);
    }
}
