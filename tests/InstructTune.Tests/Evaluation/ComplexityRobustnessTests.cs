using InstructTune.Evaluation;
using InstructTune.Evaluation.Complexity;
using InstructTune.Evaluation.Robustness;

namespace InstructTune.Tests.Evaluation;

public class ComplexityRobustnessTests
{
    [Theory]
    [InlineData("Translate this sentence into French.", ComplexityLevel.Simple)]
    [InlineData("If the number is even, say yes; otherwise say no.", ComplexityLevel.Conditional)]
    [InlineData("First read the text, then list its names, finally count them.", ComplexityLevel.MultiStep)]
    [InlineData("1. Boil water\n2. Add pasta\n3. Drain", ComplexityLevel.MultiStep)]
    [InlineData("Sort the list unless it is already sorted.", ComplexityLevel.Conditional)]
    public void RulesClassifyByStructure(string instruction, ComplexityLevel expected) =>
        Assert.Equal(expected, ComplexityClassifier.Classify(instruction));

    [Fact]
    public void MetadataWinsOverRules() =>
        Assert.Equal(ComplexityLevel.MultiStep, ComplexityClassifier.Classify("Say hi.", new Dictionary<string, string> { ["complexity"] = "multi_step" }));

    [Fact]
    public void PerLevelMeansAreComputedPerLevelAndOverall()
    {
        var rows = PerLevel.Aggregate(
        [
            (ComplexityLevel.Simple, new Dictionary<string, double> { ["f1"] = 1.0 }),
            (ComplexityLevel.Simple, new Dictionary<string, double> { ["f1"] = 0.5 }),
            (ComplexityLevel.MultiStep, new Dictionary<string, double> { ["f1"] = 0.0 }),
        ]);
        Assert.Equal(0.75, rows.Single(r => r.Level == "simple").Means["f1"], 1e-12);
        Assert.True(double.IsNaN(rows.Single(r => r.Level == "conditional").Means["f1"]));
        Assert.Equal(0.5, rows.Single(r => r.Level == "overall").Means["f1"], 1e-12);
        Assert.Equal(3, rows.Single(r => r.Level == "overall").Count);
    }

    [Fact]
    public void ParaphrasesKeepTheOriginalFirstAndAreDeterministic()
    {
        var a = ParaphraseGenerator.Generate("Write a short poem about the sea in at most 40 words.", 5, seed: 3);
        var b = ParaphraseGenerator.Generate("Write a short poem about the sea in at most 40 words.", 5, seed: 3);
        Assert.Equal(a, b);
        Assert.Equal(5, a.Count);
        Assert.Equal("Write a short poem about the sea in at most 40 words.", a[0]);
        Assert.Equal(a.Count, a.Distinct().Count());
        Assert.Equal("In at most 40 words, write a short poem about the sea.", ParaphraseGenerator.Fronted(a[0]));
        Assert.Equal("Could you write a short poem about the sea in at most 40 words?", ParaphraseGenerator.Question(a[0]));
        Assert.Contains(a, p => p.Contains("compose", StringComparison.OrdinalIgnoreCase) || p.Contains("brief"));
    }

    [Fact]
    public void RobustnessReportsMeanStdAndWorst()
    {
        // The fake model answers well only when the phrasing is a question.
        var gen = new DelegateTextGenerator(p => p.EndsWith('?') ? "good" : "bad");
        var tasks = new[]
        {
            new RobustnessTask("t1", ["Do x.", "Could you do x?"], o => o == "good" ? 1 : 0),
            new RobustnessTask("t2", ["Could you do y?", "Would you do y?"], o => o == "good" ? 1 : 0),
        };
        var r = RobustnessEvaluator.Evaluate(tasks, gen);
        Assert.Equal(0.5, r.Tasks[0].Mean, 1e-12);
        Assert.Equal(0.5, r.Tasks[0].Std, 1e-12);   // population std of {0, 1}
        Assert.Equal(0, r.Tasks[0].Worst);
        Assert.Equal(1, r.Tasks[1].Mean);
        Assert.Equal(0.75, r.Mean, 1e-12);
        Assert.Equal(0.25, r.MeanStd, 1e-12);
        Assert.Equal(0, r.Worst);
    }
}
