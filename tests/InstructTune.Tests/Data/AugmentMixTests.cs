using InstructTune.Data.Augmentation;
using InstructTune.Data.Loading;
using InstructTune.Data.Mixing;
using InstructTune.Data.Records;
using InstructTune.Data.Templating;

namespace InstructTune.Tests.Data;

public class AugmentMixTests
{
    private static readonly InstructionRecord Rec = new("Name the capital", "of France", "Paris is it", "geo");

    [Fact]
    public void InstructionMaskingTouchesOnlyInstructionTokens()
    {
        var tok = new WordTokenizer();
        var e = new ExampleTokenizer(tok, new AlpacaTemplate()).Tokenize(Rec, 0);
        var masked = InstructionMasking.Apply(e, 1.0, MaskMode.Replace, maskTokenId: 0, new Random(1));
        for (int t = 0; t < e.Length; t++)
            Assert.Equal(e.Segments[t] == (byte)Segment.Instruction ? 0 : e.Ids[t], masked.Ids[t]);
        Assert.Equal(e.Labels, masked.Labels);
        var dropped = InstructionMasking.Apply(e, 1.0, MaskMode.Drop, 0, new Random(1));
        Assert.Equal(e.Length - e.Segments.Count(s => s == (byte)Segment.Instruction), dropped.Length);
        Assert.DoesNotContain((byte)Segment.Instruction, dropped.Segments);
        Assert.Equal(e.Labels.Where(l => l >= 0), dropped.Labels.Where(l => l >= 0));
        var none = InstructionMasking.Apply(e, 0.0, MaskMode.Replace, 0, new Random(1));
        Assert.Equal(e.Ids, none.Ids);
        // p = 0.5 hits about half of many instruction tokens.
        var longRec = Rec with { Instruction = string.Join(" ", Enumerable.Repeat("word", 2000)) };
        var le = new ExampleTokenizer(tok, new AlpacaTemplate()).Tokenize(longRec, 0);
        var half = InstructionMasking.Apply(le, 0.5, MaskMode.Replace, 0, new Random(2));
        double share = (double)half.Ids.Count(i => i == 0) / le.Segments.Count(s => s == (byte)Segment.Instruction);
        Assert.InRange(share, 0.45, 0.55);
    }

    [Fact]
    public void InversionParaphraseAndFewShot()
    {
        var inv = RecordAugmenter.Invert(Rec)!;
        Assert.Equal(("Paris is it", "Name the capital\nInput: of France", "geo:inverted"), (inv.Input, inv.Output, inv.Task));
        var groups = new[] { new[] { "Name the capital", "What is the capital?", "Give the capital city." } };
        Assert.Equal(["What is the capital?", "Give the capital city."], RecordAugmenter.Paraphrases(Rec, groups).Select(r => r.Instruction));
        Assert.Empty(RecordAugmenter.Paraphrases(Rec with { Instruction = "other" }, groups));

        var sni = SniTask.Read(TestPaths.SharedTestData("datasets", "super-natural-instructions", "tasks", "task648_answer_generation.json"));
        var shot = RecordAugmenter.FewShot(sni.Records[0], sni.Task.PositiveExamples, k: 2, new Random(1));
        Assert.StartsWith("Definition: You will see a sentence", shot.Instruction);
        Assert.Contains("Positive Example 2 -\nInput: ", shot.Instruction);
        Assert.DoesNotContain("Positive Example 3", shot.Instruction);
        Assert.EndsWith("Now complete the following example -", shot.Instruction);
        Assert.Equal(sni.Records[0].Input, shot.Input);
        // k larger than available is capped (task648 has 2 positives).
        Assert.DoesNotContain("Positive Example 3", RecordAugmenter.FewShot(sni.Records[0], sni.Task.PositiveExamples, 5, new Random(1)).Instruction);
    }

    [Fact]
    public void MixingRatesFollowTheFormulas()
    {
        var sources = new[] { new MixSource("big", 100_000), new MixSource("mid", 1_000), new MixSource("tiny", 10) };
        var ep = Mixture.Rates(sources, MixStrategy.ExamplesProportional, cap: 3000);
        Assert.Equal([3000 / 4010.0, 1000 / 4010.0, 10 / 4010.0], ep.Select(r => Math.Round(r, 12)), new RoundedComparer());
        var t2 = Mixture.Rates(sources, MixStrategy.Temperature, cap: 3000, temperature: 2);
        double z = Math.Sqrt(3000) + Math.Sqrt(1000) + Math.Sqrt(10);
        Assert.Equal(Math.Sqrt(1000) / z, t2[1], 12);
        var withText = Mixture.Rates([.. sources, new MixSource("web", 5, PlainText: true)], MixStrategy.Weights, plainTextRatio: 0.25);
        Assert.Equal(0.25, withText[3], 12);
        Assert.Equal(0.75 / 3, withText[0], 12);

        var draws = Mixture.Sample(sources, ep, 40_000, seed: 5);
        var share = draws.Count(d => d.Source == 1) / 40_000.0;
        Assert.InRange(share, ep[1] - 0.01, ep[1] + 0.01);
        Assert.All(draws, d => Assert.InRange(d.Index, 0, sources[d.Source].Count - 1));
        // Without replacement within a pass: the first 10 draws of "tiny" are its 10 examples.
        Assert.Equal(Enumerable.Range(0, 10), draws.Where(d => d.Source == 2).Take(10).Select(d => d.Index).Order());
        Assert.Equal(draws, Mixture.Sample(sources, ep, 40_000, seed: 5));
    }

    [Fact]
    public void StagesReplayEarlierStagesAndComplexityIsBalanced()
    {
        var stage1 = new Stage("tasks", [new MixSource("a", 50)], [1.0], 1000);
        var stage2 = new Stage("chat", [new MixSource("b", 50)], [1.0], 10_000);
        var plan = StageSchedule.Build([stage1, stage2], replay: 0.2, seed: 3);
        Assert.All(plan.Take(1000), p => Assert.Equal(0, p.Stage));
        var replayed = plan.Skip(1000).Count(p => p.Stage == 0) / 10_000.0;
        Assert.InRange(replayed, 0.18, 0.22);

        var levels = Enumerable.Repeat(0, 900).Concat(Enumerable.Repeat(1, 90)).Concat(Enumerable.Repeat(2, 10)).ToArray();
        var balanced = ComplexityBalancer.Balance(levels, 3000, seed: 1);
        Assert.Equal([1000, 1000, 1000], balanced.GroupBy(i => levels[i]).OrderBy(g => g.Key).Select(g => g.Count()));
    }

    private sealed class RoundedComparer : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) < 1e-12;
        public int GetHashCode(double d) => 0;
    }
}
