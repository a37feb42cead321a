using InstructTune.Evaluation.Fidelity;

namespace InstructTune.Tests.Evaluation;

public class FidelityTests
{
    private static Constraint Only(string instruction, ConstraintKind kind) =>
        Assert.Single(ConstraintExtractor.Extract(instruction), c => c.Kind == kind);

    [Theory]
    [InlineData("Summarise the article in at most 50 words.", ConstraintKind.MaxWords, 50)]
    [InlineData("Describe it in fewer than 3 sentences.", ConstraintKind.MaxSentences, 2)]
    [InlineData("Write at least 100 words about rivers.", ConstraintKind.MinWords, 100)]
    [InlineData("Answer in exactly two sentences.", ConstraintKind.ExactSentences, 2)]
    [InlineData("List 5 reasons to learn Rust.", ConstraintKind.ItemCount, 5)]
    [InlineData("Give three short tips for sleeping well.", ConstraintKind.ItemCount, 3)]
    [InlineData("Write 2 paragraphs on tea.", ConstraintKind.ParagraphCount, 2)]
    public void CountsAndLimitsAreExtracted(string instruction, ConstraintKind kind, int number) =>
        Assert.Equal(number, Only(instruction, kind).Number);

    [Fact]
    public void WordsFormatsEntitiesAndStepsAreExtracted()
    {
        var c = ConstraintExtractor.Extract(
            "Write a note to Marie Curie in JSON. Include the keywords \"radium\" and polonium. Do not use the word Nobel. " +
            "First greet her, then ask about her laboratory, finally thank her.");
        Assert.Equal(["radium", "polonium"], c.Single(x => x.Kind == ConstraintKind.RequiredWord).Words);
        Assert.Equal(["Nobel"], c.Single(x => x.Kind == ConstraintKind.ForbiddenWord).Words);
        Assert.Contains(c, x => x.Kind == ConstraintKind.Json);
        Assert.Contains("Marie Curie", c.Single(x => x.Kind == ConstraintKind.NamedEntity).Words!);
        Assert.Equal(["greet", "laboratory", "thank"], c.Single(x => x.Kind == ConstraintKind.OrderedSteps).Words);
    }

    [Fact]
    public void SimpleInstructionHasNoConstraints() => Assert.Empty(ConstraintExtractor.Extract("tell me a joke"));

    [Fact]
    public void CheckerReportsWhichAreKept()
    {
        var instruction = "List 3 fruits as a bullet list in at most 12 words. Do not use the word apple. " +
                          "Start your answer with \"Fruits:\"";
        var good = "Fruits:\n- banana\n- cherry\n- mango";
        var bad = "Here are some: apple, pear and plum, which are all very tasty fruits indeed and healthy.";
        var constraints = ConstraintExtractor.Extract(instruction);
        Assert.Equal(5, constraints.Count);
        Assert.All(FidelityChecker.Check(constraints, good), r => Assert.True(r.Kept, r.ToString()));
        var badResults = FidelityChecker.Check(constraints, bad);
        Assert.All(badResults, r => Assert.False(r.Kept, r.ToString()));
        Assert.Contains("used: apple", badResults.Single(r => r.Constraint.Kind == ConstraintKind.ForbiddenWord).Detail);
        Assert.Contains("0 list items", badResults.Single(r => r.Constraint.Kind == ConstraintKind.ItemCount).Detail);
    }

    [Fact]
    public void OrderedStepsMustAppearInOrder()
    {
        var steps = new Constraint(ConstraintKind.OrderedSteps, Words: ["preheat", "mix", "bake"]);
        Assert.True(FidelityChecker.Check([steps], "Preheat the oven. Mix flour. Bake 20 minutes.")[0].Kept);
        Assert.False(FidelityChecker.Check([steps], "Mix flour. Preheat the oven. Bake 20 minutes.")[0].Kept);
    }

    [Theory]
    [InlineData("One. Two! Three?", 3)]
    [InlineData("Version 2.0 is out. Really", 2)]
    [InlineData("", 0)]
    public void SentenceCounting(string text, int n) => Assert.Equal(n, FidelityChecker.SentenceCount(text));

    [Fact]
    public void JsonCaseAndEnds()
    {
        Assert.True(FidelityChecker.Check([new Constraint(ConstraintKind.Json)], "```json\n{\"a\": 1}\n```")[0].Kept);
        Assert.False(FidelityChecker.Check([new Constraint(ConstraintKind.Json)], "{a: 1}")[0].Kept);
        Assert.True(FidelityChecker.Check([new Constraint(ConstraintKind.AllCaps)], "HELLO, WORLD 42")[0].Kept);
        Assert.False(FidelityChecker.Check([new Constraint(ConstraintKind.Lowercase)], "hello World")[0].Kept);
        Assert.True(FidelityChecker.Check([new Constraint(ConstraintKind.EndsWith, Words: ["Is there anything else?"])], "Done. Is there anything else?  ")[0].Kept);
    }
}

public class FidelityExtractionEdgeTests
{
    [Fact]
    public void EntitiesInQuestionsLanguagesAndUnitsAreNotRequired()
    {
        Assert.DoesNotContain(ConstraintExtractor.Extract("What is the capital of France? Answer in at most 5 words."), c => c.Kind == ConstraintKind.NamedEntity);
        Assert.DoesNotContain(ConstraintExtractor.Extract("Translate 'good morning' into Spanish."), c => c.Kind == ConstraintKind.NamedEntity);
        var email = ConstraintExtractor.Extract("Write a short email to Alice Smith about the budget.");
        var entity = Assert.Single(email, c => c.Kind == ConstraintKind.NamedEntity);
        Assert.True(FidelityChecker.Check([entity], "Dear Alice, the budget is ready.")[0].Kept);
        Assert.False(FidelityChecker.Check([entity], "Dear colleague, the budget is ready.")[0].Kept);
    }

    [Fact]
    public void StepsWithoutFirstTakeTheLeadingClauseAndStopAtTheSentenceEnd()
    {
        var steps = Assert.Single(ConstraintExtractor.Extract("Add 4 and 5, then multiply the result by 2, and finally state the answer. Be brief."),
            c => c.Kind == ConstraintKind.OrderedSteps);
        Assert.Equal(["add", "multiply", "answer"], steps.Words);
        var recipe = Assert.Single(ConstraintExtractor.Extract("First boil the water, then add the pasta, finally drain it. Write these steps as a numbered list."),
            c => c.Kind == ConstraintKind.OrderedSteps);
        Assert.Equal(["water", "pasta", "drain"], recipe.Words);
        Assert.Equal(["fruit", "colour", "country"], ConstraintExtractor.Extract("1. Name a fruit.\n2. Give its colour.\n3. Say one country where it grows.")
            .Single(c => c.Kind == ConstraintKind.OrderedSteps).Words);
    }

    [Fact]
    public void BuiltinSuiteReferencesKeepTheirOwnConstraints()
    {
        // The suite's references are model answers: every constraint extracted from an instruction must hold for them.
        foreach (var item in InstructTune.Evaluation.Suites.BuiltinSuite.Create().Instructions)
            Assert.All(FidelityChecker.Check(ConstraintExtractor.Extract(item.Instruction), item.References[0]),
                r => Assert.True(r.Kept, $"{item.Id}: {r.Constraint} — {r.Detail}"));
    }
}
