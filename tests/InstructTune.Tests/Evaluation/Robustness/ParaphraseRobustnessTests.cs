using InstructTune.Data.Records;
using InstructTune.Evaluation.Robustness;

namespace InstructTune.Tests.Evaluation.Robustness;

/// <summary>Robustness to paraphrase on fakes: a model that answers only the original wording (paraphrase-sensitive)
/// against one that answers every wording alike (robust), with and without a back-translated phrasing.</summary>
public class ParaphraseRobustnessTests
{
    private static readonly (string Id, InstructionRecord Record, IReadOnlyList<string> References)[] Examples =
    [
        ("a", new InstructionRecord("Write the word in capital letters.", "water", "WATER", "upper"), ["WATER"]),
        ("b", new InstructionRecord("Give the first letter of the word.", "pear", "p", "first"), ["p"]),
        ("c", new InstructionRecord("Explain in at most 5 words why the sky is blue.", "", "light scattering by air", "explain"), ["light scattering by air"]),
    ];

    private static string Answer(InstructionRecord r) => Examples.First(e => e.Record.Input == r.Input && e.Record.Task == r.Task).Record.Output;

    [Fact]
    public void AParaphraseSensitiveModelScoresClearlyWorseThanARobustOne()
    {
        var back = new Dictionary<string, string> { ["a"] = "Write this word in capitals.", ["c"] = "In five words at most, explain why the sky is blue." };
        var robust = ParaphraseRobustness.Evaluate(Examples, rs => rs.Select(Answer).ToList(), 4, seed: 1, back, "fake");
        var originals = Examples.ToDictionary(e => e.Record.Task, e => e.Record.Instruction);
        var sensitive = ParaphraseRobustness.Evaluate(Examples,
            rs => rs.Select(r => r.Instruction == originals[r.Task] ? Answer(r) : "I am not sure").ToList(), 4, seed: 1, back, "fake");

        Assert.Equal(1.0, robust.Mean, 9);
        Assert.Equal(0.0, robust.MeanStd, 9);
        Assert.Equal(0.0, robust.MaxWorstDrop, 9);
        Assert.Equal(1.0, sensitive.MeanWorstDrop, 9); // right on the original, wrong on some rewrite, every example
        Assert.True(sensitive.MeanStd > 0.3, $"std {sensitive.MeanStd}");
        Assert.True(sensitive.Mean < 0.4, $"mean {sensitive.Mean}");
        Assert.Equal(1.0, sensitive.ByKind["original"], 9);
        Assert.Equal(0.0, sensitive.ByKind["back-translation"], 9);
        // Each example: the original first, at most 4 rewrites, and the back-translation where one was given.
        foreach (var e in robust.Examples)
        {
            Assert.Equal("original", e.Variants[0].Kind);
            Assert.InRange(e.Variants.Count(v => v.Kind != "original" && v.Kind != "back-translation"), 2, 4);
            Assert.Equal(back.ContainsKey(e.Id), e.Variants.Any(v => v.Kind == "back-translation"));
            Assert.Equal(e.Variants.Count, e.Variants.Select(v => v.Instruction).Distinct().Count());
        }
    }

    [Fact]
    public void VariantsKeepTheOriginalAndAreSeeded()
    {
        var a = ParaphraseRobustness.Variants("List three short tips for sleeping well.", 6, seed: 3);
        var b = ParaphraseRobustness.Variants("List three short tips for sleeping well.", 6, seed: 3);
        Assert.Equal(a, b);
        Assert.Equal("List three short tips for sleeping well.", a[0].Instruction);
        Assert.Contains(a, v => v.Kind == "synonym" && v.Instruction.StartsWith("Enumerate", StringComparison.Ordinal));
        Assert.Contains(a, v => v.Kind == "question" && v.Instruction.EndsWith('?'));
    }
}
