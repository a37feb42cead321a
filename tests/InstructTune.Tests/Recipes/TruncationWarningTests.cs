using System.Text.Json;
using InstructTune.Data.Pipeline;
using InstructTune.Recipes;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Recipes;

/// <summary>
/// Issue 12: a warning per dataset (not per task) when more than 10 % of a dataset's examples lose their whole
/// response to truncation at data.max_seq_len; such examples are dropped and counted as response_truncated_away.
/// The long records are 15-turn chats learned on their last turn only (train_on: last_assistant): truncation drops the
/// user turns first, then cuts the tail, which takes the learned turn. All datasets share one task name, so a per-task
/// count could not tell them apart.
/// </summary>
[Collection("Console")]
public class TruncationWarningTests
{
    private const int MaxSeqLen = 64;

    // n chats; the first longOnes have 15 short turns, whose alpaca headers alone (after truncation drops the user
    // turns) exceed max_seq_len, so with train_on: last_assistant the tail cut takes their only learned turn.
    private static string Write(string dir, string name, int n, int longOnes)
    {
        var path = Path.Combine(dir, name + ".jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, n).Select(i => JsonSerializer.Serialize(new
        {
            messages = Enumerable.Range(0, i < longOnes ? 15 : 1).SelectMany(t => new[]
            {
                new { role = "user", content = $"Say {i}." }, new { role = "assistant", content = $"{i}" },
            }),
        })));
        return path;
    }

    [Fact]
    public void MoreThanATenthOfADatasetLosingItsResponsesIsWarnedPerDataset()
    {
        var dir = Directory.CreateTempSubdirectory("truncwarn").FullName;
        var tokDir = TestPaths.SharedTestData("tokenizers", "llama2");
        var tok = TokenizerLoader.Load(tokDir);
        var (many, edge, few) = (Write(dir, "many", 10, 3), Write(dir, "edge", 10, 1), Write(dir, "few", 20, 1));
        var yaml = $$"""
            model: {tokenizer: {{tokDir}}}
            data:
              validation_fraction: 0
              max_seq_len: {{MaxSeqLen}}
              template: alpaca
              train_on: last_assistant
              dedup: off
              datasets:
                - {path: {{many}}, format: messages, task: shared}
                - {path: {{edge}}, format: messages, task: shared}
                - {path: {{few}}, format: messages, task: shared}
            """;
        var config = ConfigLoader.LoadFromString<TrainConfig>(yaml);
        var prepared = PrepareRecipe.Run(config, tok, tokDir, Path.Combine(dir, "out"));
        int Lost(string name) => prepared.Datasets.Single(d => d.Name == name).Stats.DroppedByReason.GetValueOrDefault(PreparePipeline.ResponseTruncatedAway);
        Assert.Equal((3, 1, 1), (Lost("many"), Lost("edge"), Lost("few")));
        var warnings = DataReport.Lines(prepared, MaxSeqLen).Where(l => l.StartsWith("warning:", StringComparison.Ordinal)).ToList();
        // 3 of 10 > 10 %: warned; 1 of 10 = 10 % and 1 of 20: not.
        Assert.Equal([$"warning: dataset many: 3 of 10 examples (30 %) lost their whole response to truncation at data.max_seq_len={MaxSeqLen} and were dropped; raise data.max_seq_len or shorten the prompts"], warnings);

        // itune prepare prints the same line.
        var file = Path.Combine(dir, "recipe.yaml");
        File.WriteAllText(file, yaml);
        var (rc, output, error) = PreparePipelineCli.Run("prepare", "--config", file, "--out", Path.Combine(dir, "cli"));
        Assert.True(rc == 0, error);
        Assert.Contains(warnings[0], output);
        Assert.DoesNotContain("warning: dataset few", output);
    }
}
