using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Evaluation.Run;
using InstructTune.Recipes.Quickstart;

namespace InstructTune.Tests.Evaluation.Run;

/// <summary>
/// `itune eval run` on a quickstart's own output (tiny preset, every held-out row evaluated): on each held-out split
/// file, with the base alone and with the tuned adapter, the predictions are the quickstart's generations example by
/// example and the `exact` mean is the quickstart's exact match.
/// </summary>
[Collection("Console")]
public sealed class EvalRunQuickstartTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("itune-evalrun-qs").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void HeldOutFilesGiveTheQuickstartsExactMatchAndGenerations()
    {
        var qs = Path.Combine(_dir, "qs");
        var options = Path.Combine(_dir, "options.json");
        File.WriteAllText(options, """{"EvalPerSplit": 0, "TuneSteps": 20, "PretrainSteps": 20}""");
        var (rc, _, err) = Evaluation.CliCapture.Run("quickstart", "--tiny", "--options", options, "--out", qs, "--seed", "3");
        Assert.True(rc == 0, err);
        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(qs, "results.json")));
        var samples = File.ReadLines(Path.Combine(qs, "samples.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        int compared = 0;
        foreach (var (phase, adapter) in new[] { ("before", (string?)null), ("after", Path.Combine(qs, "adapter")) })
            foreach (var split in QuickstartData.EvalSplits)
            {
                var outDir = Path.Combine(_dir, phase + "-" + split);
                string[] args = ["eval", "run", "--model", Path.Combine(qs, "base"), "--data", Path.Combine(qs, "suite", split + ".jsonl"),
                    "--format", "alpaca", "--template", QuickstartRecipe.PromptFormat, "--max-new-tokens", QuickstartOptions.Tiny.MaxNewTokens.ToString(),
                    "--reference-prefix", " ", "--out", outDir];
                (rc, _, err) = Evaluation.CliCapture.Run(adapter is null ? args : [.. args, "--adapter", adapter]);
                Assert.True(rc == 0, err);
                var lines = File.ReadLines(Path.Combine(outDir, EvalRunRecipe.PredictionsFile)).Select(l => JsonNode.Parse(l)!).ToList();
                var expected = samples.Where(s => s["phase"]!.GetValue<string>() == phase && s["split"]!.GetValue<string>() == split).ToList();
                Assert.Equal(expected.Count, lines.Count);
                for (int i = 0; i < lines.Count; i++)
                {
                    Assert.Equal(expected[i]["expected"]!.GetValue<string>(), lines[i]["reference"]!.GetValue<string>());
                    Assert.Equal(expected[i]["generated"]!.GetValue<string>(), lines[i]["prediction"]!.GetValue<string>());
                    Assert.Equal(expected[i]["correct"]!.GetValue<bool>() ? 1 : 0, lines[i]["metrics"]!["exact"]!.GetValue<int>());
                    compared++;
                }
                using var mine = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")));
                Assert.Equal(results.RootElement.GetProperty(phase).GetProperty(QuickstartOutputs.Key(split)).GetDouble(),
                    mine.RootElement.GetProperty("metrics").GetProperty("exact").GetDouble(), 4);
            }
        Assert.True(compared > 20);
        // The generations are not all empty: the comparison is of real text.
        Assert.Contains(samples, s => s["generated"]!.GetValue<string>().Length > 0);
    }
}
