// TRL's `margin` column of preference data: read (a finite number, else the record is refused naming the field and
// its line), carried per pair through the train/validation split into the reward model's loss (the loss itself is
// checked against PyTorch in RewardModelTests, case reward_lora_margin), and announced as unused by every other
// objective instead of being dropped silently.
using System.Text.Json;
using InstructTune.Common;
using InstructTune.Data.Loading;
using InstructTune.Data.Records;
using InstructTune.Data.Preference;
using InstructTune.Recipes;
using InstructTune.Tokenizers;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Recipes;

public class PreferenceMarginTests
{
    private static List<string> Pairs(int n, Func<int, object?> margin) => Enumerable.Range(0, n).Select(i =>
    {
        var d = new Dictionary<string, object?> { ["prompt"] = $"What is {i % 7}+{i / 7 % 5}?", ["chosen"] = $"{i % 7 + i / 7 % 5}", ["rejected"] = $"{i % 7 + i / 7 % 5 + 1}" };
        if (margin(i) is { } m) d["margin"] = m;
        return JsonSerializer.Serialize(d);
    }).ToList();

    private static (PreferenceData, PreferenceStats) Load(string model, string data) =>
        PreferenceLoader.Load(data, paired: true, TokenizerLoader.Load(model), PreferenceLoader.Template("chatml", model),
            maxSeqLen: 96, padId: 0, scoreThreshold: 0, skipInvalid: false);

    [Fact]
    public void Margins_are_read_per_pair_and_survive_the_split()
    {
        var model = PreferenceRecipeTests.Workspace(Pairs(10, i => i % 3 == 0 ? null : 0.25 * i), out var path);
        var (data, stats) = Load(model, path);
        Assert.True(data.HasMargins);
        Assert.Equal(6, stats.WithMargin);
        for (int k = 0; k < 10; k++) Assert.Equal(k % 3 == 0 ? 0 : 0.25 * k, data.Margin(k));
        var sub = data.Subset([7, 2]);
        Assert.Equal([1.75, 0.5], new[] { sub.Margin(0), sub.Margin(1) });
        // A batch's items map back to their margins (what the reward objective reads).
        Assert.Equal([7, 2], data.ItemsOf(data.Collate([7, 2])));

        var (plain, plainStats) = Load(PreferenceRecipeTests.Workspace(Pairs(4, _ => null), out var p2), p2);
        Assert.False(plain.HasMargins);
        Assert.Equal(0, plainStats.WithMargin);
    }

    [Theory]
    [InlineData("\"big\"")]
    [InlineData("true")]
    public void A_margin_that_is_not_a_number_is_refused_naming_field_and_line(string bad)
    {
        var lines = Pairs(3, _ => null);
        lines[1] = lines[1].TrimEnd('}') + ",\"margin\":" + bad + "}";
        var model = PreferenceRecipeTests.Workspace(lines, out var path);
        var e = Assert.Throws<DataFormatException>(() => Load(model, path));
        Assert.Contains("margin", e.Message);
        Assert.Contains(":2", e.Message);
    }

    [Theory]
    [InlineData("dpo", "does not use it")]
    [InlineData("reward", "r_chosen − r_rejected − margin")]
    public void Each_objective_says_what_it_does_with_the_margin(string objective, string said)
    {
        var model = PreferenceRecipeTests.Workspace(Pairs(6, i => 1.0), out var path);
        var config = ConfigLoader.LoadFromString<TrainConfig>("",
            [$"model.path={model}", $"data.path={path}", $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}",
             "data.template=chatml", "data.max_seq_len=96", $"training.objective={objective}"]);
        var lines = new List<string>();
        PreferenceSetup.LoadData(config, TokenizerLoader.Load(model), model, 0, null!, model, lines.Add);
        Assert.Contains(lines, l => l.Contains("margin") && l.Contains(said));
    }
}
