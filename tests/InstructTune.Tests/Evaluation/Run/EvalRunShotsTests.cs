using System.Text.Json.Nodes;
using InstructTune.Evaluation;
using InstructTune.Evaluation.Generalization;

namespace InstructTune.Tests.Evaluation.Run;

/// <summary>
/// Zero-/few-shot curves and cross-task generalisation: on a fake model that copies the last worked example's output
/// (so it is right exactly when a shot of the same task is in the prompt), seen tasks go from 0 at k = 0 to 1 at k ≥ 1
/// and held-out tasks stay at 0; in-cluster and cross-cluster held-out tasks are told apart. And the section end to end
/// through `itune eval run --shots-from` on a tiny model.
/// </summary>
[Collection("Console")]
public sealed class EvalRunShotsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("itune-evalrun-shots").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static List<TaskExample> Task(string id, string instruction, int n, int from = 0) =>
        Enumerable.Range(from, n).Select(i => new TaskExample(id, instruction, $"{id}-{i}", "same")).ToList();

    [Fact]
    public void CurvesFollowTheShotsTheModelCanUse()
    {
        // Every task's answer is "same" for its own examples; a held-out task's answer differs ("other").
        var train = Task("upper", "Write the word in capitals.", 6).Concat(Task("lower", "Write the word in small letters.", 6)).ToList();
        var eval = Task("upper", "Write the word in capitals.", 3, 10)
            .Concat(Task("caps2", "Write the phrase in capitals.", 3).Select(e => e with { Output = "other" }))   // same leading verb: in-cluster
            .Concat(Task("json", "Return the word as JSON.", 3).Select(e => e with { Output = "other" })).ToList(); // no training task like it
        // Copies the output of the last worked example ("Output: x" before "Now your turn"), else answers "nothing".
        var copy = new DelegateTextGenerator(p =>
        {
            var marker = p.LastIndexOf("Output: ", p.Contains("Now your turn", StringComparison.Ordinal) ? p.IndexOf("Now your turn", StringComparison.Ordinal) : 0, StringComparison.Ordinal);
            return p.Contains("Now your turn", StringComparison.Ordinal) && marker >= 0 ? p[(marker + 8)..].Split('\n')[0] : "nothing";
        });
        var result = ShotCurves.Evaluate(train, eval, [0, 1, 4], copy, seed: 1);
        var rows = result["by_k"]!.AsArray().Select(r => r!.AsObject()).ToList();
        Assert.Equal(0.0, rows[0]["seen"]!.GetValue<double>());
        Assert.Equal(1.0, rows[1]["seen"]!.GetValue<double>());
        Assert.Equal(1.0, rows[2]["seen"]!.GetValue<double>());
        Assert.All(rows, r => Assert.Equal(0.0, r["held_out"]!.GetValue<double>()));
        Assert.Equal(1, result["seen_tasks"]!.GetValue<int>());
        Assert.Equal(2, result["held_out_tasks"]!.GetValue<int>());
        Assert.Equal(3, rows[0]["in_cluster_count"]!.GetValue<int>());
        Assert.Equal(3, rows[0]["cross_cluster_count"]!.GetValue<int>());
        Assert.Equal(1.0, rows[1]["seen_minus_held_out"]!.GetValue<double>());
    }

    [Fact]
    public void EvalRunWritesTheSection()
    {
        var train = Path.Combine(_dir, "train.jsonl");
        var data = Path.Combine(_dir, "heldout.jsonl");
        JsonObject Row(string task, string instruction, int i) => new() { ["instruction"] = instruction, ["input"] = $"w{i}", ["output"] = $"W{i}", ["task"] = task };
        File.WriteAllLines(train, Enumerable.Range(0, 6).Select(i => Row("upper", "Write the word in capitals.", i).ToJsonString()));
        File.WriteAllLines(data, Enumerable.Range(10, 3).Select(i => Row("upper", "Write the word in capitals.", i).ToJsonString())
            .Concat(Enumerable.Range(20, 3).Select(i => Row("json", "Return the word as JSON.", i).ToJsonString())));
        var outDir = Path.Combine(_dir, "out");
        var (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--model", ModelBackends.TinyEvalModel.Path, "--data", data, "--format", "alpaca",
            "--template", "raw", "--max-new-tokens", "2", "--shots-from", train, "--shots", "0,2", "--out", outDir);
        Assert.True(rc == 0, err);
        var fs = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")))!["few_shot"]!;
        Assert.Equal(6, fs["examples"]!.GetValue<int>());
        Assert.Equal([0, 2], fs["by_k"]!.AsArray().Select(r => r!["k"]!.GetValue<int>()));
        Assert.Equal(3, fs["by_k"]![0]!["seen_count"]!.GetValue<int>());
        Assert.Contains("Zero-/few-shot curves", File.ReadAllText(Path.Combine(outDir, "report.html")));
        (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--model", ModelBackends.TinyEvalModel.Path, "--data", data, "--format", "alpaca",
            "--shots-from", train, "--shots", "0,x", "--out", Path.Combine(_dir, "bad"));
        Assert.Equal(2, rc);
        Assert.Contains("\"x\" is not a whole number", err);
    }
}
