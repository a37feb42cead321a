using System.Text.Json;
using InstructTune.Training.Config;
using InstructTune.Data.Preference;
using InstructTune.Recipes;
using InstructTune.Tests.Evaluation;

namespace InstructTune.Tests.Recipes;

/// <summary>
/// Bad feedback records from the command line: `itune train` stops with exit 2 and one line naming the file, the line
/// and the missing field (no stack trace); KTO records without a label are skipped and counted with
/// preference.skip_invalid_records, like the pairwise ones (PreferenceRecipeTests).
/// </summary>
[Collection("Console")]
public class PreferenceBadInputCliTests
{
    private static List<string> Pairs(int n) => Enumerable.Range(0, n)
        .Select(i => JsonSerializer.Serialize(new { prompt = $"What is {i % 7}+{i % 5}?", chosen = $"{i % 7 + i % 5}", rejected = $"{i % 7 + i % 5 + 1}" })).ToList();

    [Theory]
    [InlineData("""{"prompt":"What is 1+1?","rejected":"3"}""", "chosen", "dpo")]
    [InlineData("""{"prompt":"What is 1+1?","chosen":"2"}""", "rejected", "reward")]
    [InlineData("""{"prompt":"What is 1+1?","completion":"2"}""", "label", "kto")]
    public void AMissingFieldStopsTheRunWithFileLineAndFieldAndExitCode2(string bad, string field, string objective)
    {
        var lines = objective == "kto"
            ? Enumerable.Range(0, 6).Select(i => JsonSerializer.Serialize(new { prompt = $"What is {i}+1?", completion = $"{i + 1}", label = i % 2 == 0 })).ToList()
            : Pairs(6);
        lines.Insert(2, bad);                                                                   // line 3
        var model = PreferenceRecipeTests.Workspace(lines, out var data);
        var run = Path.Combine(Path.GetDirectoryName(data)!, "run");
        var (rc, _, err) = CliCapture.Run("train", $"model.path={model}", $"data.path={data}", $"checkpoint.output_dir={run}",
            $"training.objective={objective}", "data.template=chatml", "data.max_seq_len=96", "training.max_steps=1", "logging.tensor_board=false");
        Assert.Equal(2, rc);
        Assert.Contains(Path.GetFileName(data) + ":3", err);
        Assert.Contains(field, err);
        Assert.DoesNotContain("   at ", err);                                                  // no stack trace
        Assert.False(Directory.Exists(Path.Combine(run, "adapter")), "nothing exported");
    }

    [Fact]
    public void KtoRecordsWithoutALabelAreSkippedAndCountedWhenAsked()
    {
        var lines = Enumerable.Range(0, 8).Select(i => JsonSerializer.Serialize(new { prompt = $"What is {i}+1?", completion = $"{i + 1}", label = i % 2 == 0 })).ToList();
        lines.Add("""{"prompt":"What is 9+1?","completion":"10"}""");                            // no label
        lines.Add(JsonSerializer.Serialize(new { prompt = string.Join(" ", Enumerable.Repeat("What is 1+1?", 60)), completion = "2", label = true }));
        var model = PreferenceRecipeTests.Workspace(lines, out var data);
        var config = ConfigLoader.LoadFromString<InstructTune.Training.Config.TrainConfig>("",
            [$"model.path={model}", $"data.path={data}", $"checkpoint.output_dir={Path.Combine(Path.GetDirectoryName(data)!, "run")}",
             "training.objective=kto", "preference.skip_invalid_records=true", "data.template=chatml", "data.max_seq_len=96", "logging.tensor_board=false"]);
        FineTuneRecipe.Setup(config);
        var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(config.Checkpoint.OutputDir, "data", PreferenceSetup.StatsFile))).RootElement;
        Assert.Equal(10, stats.GetProperty("records_read").GetInt32());
        Assert.Equal(8, stats.GetProperty("items_kept").GetInt32());
        var reasons = stats.GetProperty("rejected_by_reason");
        Assert.Equal(1, reasons.GetProperty(PreferenceRecords.MissingLabel).GetInt32());
        Assert.Equal(1, reasons.GetProperty(PreferenceRecords.PromptTooLong).GetInt32());
    }
}
