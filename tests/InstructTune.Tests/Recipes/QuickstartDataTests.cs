using InstructTune.Data.TaskSuite;
using InstructTune.Data.Templating;
using InstructTune.Recipes.Quickstart;
using InstructTune.Tokenizers;
using InstructTune.Tokenizers.Training;
using Xunit;

namespace InstructTune.Tests.Recipes;

/// <summary>The quickstart's data rules, checked against the suite's own catalogue and hand-worked values.</summary>
public sealed class QuickstartDataTests
{
    private static readonly List<SuiteExample> Suite = TaskSuiteGenerator.Generate(new TaskSuiteOptions(Seed: 5, SimplePerFamily: 20,
        ConditionalPerPair: 2, CompositionPerPair: 2, HeldOutPerFamily: 4, HeldOutPerPair: 1));

    [Fact]
    public void SubsetKeepsOnlyChosenFamiliesAndNoConditionals()
    {
        var subset = QuickstartData.Subset(Suite);
        Assert.NotEmpty(subset);
        Assert.DoesNotContain(subset, s => s.Record.Complexity == 1);
        Assert.All(subset, s => Assert.All(s.Record.Task.Split("_then_"), f => Assert.Contains(f, QuickstartData.Families)));
        // Every chosen family is trained and has held-out examples and phrasings; some composition is held out.
        foreach (var f in QuickstartData.Families)
            foreach (var split in new[] { SuiteSplit.Train, SuiteSplit.HeldOutExamples, SuiteSplit.HeldOutPhrasings })
                Assert.Contains(subset, s => s.Record.Task == f && s.Split == split);
        Assert.Contains(subset, s => s.Split == SuiteSplit.HeldOutCompositions);
        Assert.DoesNotContain(subset, s => s.Record.Task == "reverse_word" || s.Split == SuiteSplit.HeldOutFamilies);
    }

    [Fact]
    public void PretrainTextStatesFactsWithoutAnyInstructionPhrasing()
    {
        var text = QuickstartData.PretrainText(QuickstartData.Subset(Suite));
        Assert.NotEmpty(text);
        Assert.All(text, r => Assert.True(r.IsPlainText));
        var phrasings = TaskFamilies.All.SelectMany(f => f.Phrasings).Select(p => p.TrimEnd('.')).ToList();
        foreach (var r in text)
        {
            Assert.DoesNotContain(phrasings, p => r.Output.Contains(p, StringComparison.OrdinalIgnoreCase));
            Assert.DoesNotContain("Answer", r.Output);
        }
        Assert.Equal("the word apple in capitals is APPLE.", QuickstartData.Sentence("uppercase", "apple", "APPLE"));
        Assert.Equal("after 41 comes 42.", QuickstartData.Sentence("successor", "41", "42"));
    }

    [Theory]
    [InlineData("APPLE", "APPLE", true)]
    [InlineData(" APPLE\n", "APPLE", true)]
    [InlineData("apple", "APPLE", false)]   // case is the answer for uppercase/lowercase
    [InlineData("APPLE.", "APPLE", false)]
    [InlineData("", "a", false)]
    public void ExactMatchIgnoresOnlySurroundingWhitespace(string generated, string expected, bool match) =>
        Assert.Equal(match, QuickstartEvaluation.IsExactMatch(generated, expected));

    /// <summary>The evaluation prompt must tokenize exactly as the start of the training text, or the tuned model sees a new input.</summary>
    [Fact]
    public void PromptTokensArePrefixOfTrainingTokensAndResponseIsLearned()
    {
        var subset = QuickstartData.Subset(Suite);
        var template = new FormatStringTemplate(QuickstartRecipe.PromptFormat);
        var bpe = new BpeTrainerOptions(400);
        var dir = Path.Combine(Path.GetTempPath(), "itune-qs-tok-" + Guid.NewGuid().ToString("N"));
        try
        {
            ByteLevelBpeTrainer.Save(ByteLevelBpeTrainer.Train(subset.Select(s => template.Render(QuickstartData.WithLeadingSpace(s.Record)).Text), bpe), bpe, dir);
            var tokenizer = TokenizerLoader.Load(dir);
            var sft = new ExampleTokenizer(tokenizer, template);
            foreach (var s in subset)
            {
                var example = sft.Tokenize(QuickstartData.WithLeadingSpace(s.Record), 0);
                var prompt = tokenizer.Encode(QuickstartEvaluation.PromptText(template, s.Record), addSpecialTokens: true).Ids;
                Assert.Equal(prompt, example.Ids[..prompt.Length]);
                // Learned labels are exactly the answer tokens and EOS: they decode to the expected output.
                var learned = example.Labels.Where(l => l != -100).ToArray();
                Assert.Equal(tokenizer.EosId, learned[^1]);
                Assert.Equal(s.Record.Output, tokenizer.Decode(learned[..^1]).Trim());
                Assert.Equal(example.Ids, prompt.Concat(learned).ToArray());
                Assert.Equal(prompt.Length, example.Labels.TakeWhile(l => l == -100).Count());
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
