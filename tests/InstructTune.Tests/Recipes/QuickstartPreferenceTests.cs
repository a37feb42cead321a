using System.Text.Json;
using InstructTune.Data.TaskSuite;
using InstructTune.Recipes.Quickstart;

namespace InstructTune.Tests.Recipes;

/// <summary>
/// The quickstart's DPO stage (option Preference "dpo", rejected = "own_mistakes") on the tiny preset: the pairs are
/// what the stage promises (rejected = the SFT model's own wrong greedy answer, else another input's answer of the
/// same task; training prompts are fresh, held-out pairs come from the held-out splits) and the results file is written.
/// </summary>
public sealed class QuickstartPreferenceTests : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), "itune-qs-dpo-" + Guid.NewGuid().ToString("N"));

    public void Dispose() { if (Directory.Exists(_out)) Directory.Delete(_out, recursive: true); }

    [Fact]
    public void OwnMistakePairsAreBuiltFromTheSftModelsGreedyAnswers()
    {
        var o = QuickstartOptions.Tiny with { OutDir = _out, Preference = "dpo", DpoSteps = 2, DpoTrainPerFamily = 6, Seed = 3 };
        QuickstartRecipe.Run(o, new PlainQuickstartProgress(TextWriter.Null));

        var suite = File.ReadLines(Path.Combine(_out, "suite", "suite.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var seen = suite.Select(s => (s.GetProperty("instruction").GetString(), s.GetProperty("input").GetString())).ToHashSet();
        var answersByTask = suite.GroupBy(s => s.GetProperty("task").GetString()).ToDictionary(g => g.Key!, g => g.Select(s => s.GetProperty("output").GetString()).ToHashSet());
        var pairs = File.ReadLines(Path.Combine(_out, "preference_pairs.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var train = pairs.Where(p => p.GetProperty("set").GetString() == "train").ToList();
        var held = pairs.Where(p => p.GetProperty("set").GetString() == "heldout").ToList();
        Assert.NotEmpty(train);
        Assert.NotEmpty(held);

        // Training prompts are none of the suite's; held-out pairs are the suite's held-out examples and phrasings.
        Assert.All(train, p => Assert.DoesNotContain((p.GetProperty("instruction").GetString(), p.GetProperty("input").GetString()), seen));
        Assert.All(held, p => Assert.Contains(p.GetProperty("split").GetString(), new[] { SuiteSplit.HeldOutExamples, SuiteSplit.HeldOutPhrasings }));
        Assert.All(held, p => Assert.Contains((p.GetProperty("instruction").GetString(), p.GetProperty("input").GetString()), seen));

        // Rejected answers: never the chosen one; a non-mistake is an answer of another input of the same task.
        foreach (var p in train) answersByTask[p.GetProperty("task").GetString()!].Add(p.GetProperty("chosen").GetString());
        foreach (var p in pairs)
        {
            Assert.NotEqual(p.GetProperty("chosen").GetString()!.Trim(), p.GetProperty("rejected").GetString()!.Trim());
            if (!p.GetProperty("sft_mistake").GetBoolean())
                Assert.Contains(p.GetProperty("rejected").GetString(), answersByTask[p.GetProperty("task").GetString()!]);
        }

        // The tiny SFT model is wrong on (nearly) everything: its greedy answers are the rejected ones, and they are
        // what the held-out evaluation generated for the same prompts.
        Assert.True(held.Count(p => p.GetProperty("sft_mistake").GetBoolean()) >= held.Count / 2, "most tiny-model answers are mistakes");

        var r = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "preference_results.json"))).RootElement;
        Assert.Equal("own_mistakes", r.GetProperty("rejected").GetString());
        Assert.Equal(train.Count, r.GetProperty("train_pairs").GetInt32());
        Assert.Equal(held.Count, r.GetProperty("held_out_pairs").GetInt32());
        Assert.Equal(held.Count(p => p.GetProperty("sft_mistake").GetBoolean()), r.GetProperty("held_out_sft_mistakes").GetInt32());
        Assert.InRange(r.GetProperty("sft_preference_accuracy").GetDouble(), 0, 1);
        Assert.InRange(r.GetProperty("dpo_preference_accuracy").GetDouble(), 0, 1);
        Assert.True(r.GetProperty("dpo_exact_match_by_split").TryGetProperty(SuiteSplit.HeldOutPhrasings, out _));
        Assert.True(File.Exists(Path.Combine(_out, "dpo_adapter", "adapter_config.json")));
    }

    [Fact]
    public void UnknownRejectedModeIsRefused()
    {
        var o = QuickstartOptions.Tiny with { OutDir = _out, Preference = "dpo", DpoRejected = "random", DpoSteps = 1 };
        var e = Assert.Throws<InvalidDataException>(() => QuickstartRecipe.Run(o, new PlainQuickstartProgress(TextWriter.Null)));
        Assert.Contains("DpoRejected", e.Message);
        Assert.False(Directory.Exists(Path.Combine(_out, "base")), "refused before any stage ran");
    }
}
