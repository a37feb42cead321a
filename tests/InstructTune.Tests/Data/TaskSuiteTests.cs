using System.Text.Json;
using InstructTune.Data.TaskSuite;

namespace InstructTune.Tests.Data;

public class TaskSuiteTests
{
    private static readonly List<SuiteExample> Suite = TaskSuiteGenerator.Generate();

    [Fact]
    public void CatalogueMeetsTheSizeRequirements()
    {
        var families = TaskFamilies.All;
        Assert.True(families.Count >= 24);
        Assert.True(families.Select(f => f.Cluster).Distinct().Count() >= 6);
        Assert.All(families, f => Assert.True(f.Phrasings.Length >= 4 && f.Phrasings.Distinct().Count() == f.Phrasings.Length, f.Name));
        Assert.True(families.Count(f => f.HeldOut) >= 4);
        Assert.Equal(families.Count, families.Select(f => f.Name).Distinct().Count());
    }

    [Fact]
    public void EveryFamilyAnswersAsThePythonDefinitionDoes()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("data", "task_answers.json")));
        var byName = TaskFamilies.All.ToDictionary(f => f.Name);
        Assert.Equal(byName.Keys.Order(), doc.RootElement.EnumerateObject().Select(p => p.Name).Order());
        foreach (var family in doc.RootElement.EnumerateObject())
            foreach (var pair in family.Value.EnumerateArray())
                Assert.Equal(pair[1].GetString(), byName[family.Name].Answer(pair[0].GetString()!));
    }

    [Fact]
    public void GeneratedExamplesAreRightAndSplitsAreDisjoint()
    {
        var byName = TaskFamilies.All.ToDictionary(f => f.Name);
        foreach (var s in Suite.Where(s => s.Record.Complexity == 0))
            Assert.Equal(byName[s.Record.Task].Answer(s.Record.Input), s.Record.Output);
        Assert.Equal([0, 1, 2], Suite.Select(s => s.Record.Complexity).Distinct().Order());
        Assert.Equal(SuiteSplit.All.Order(), Suite.Select(s => s.Split).Distinct().Order());
        var train = Suite.Where(s => s.Split == SuiteSplit.Train).ToList();
        var trainKeys = train.Select(s => (s.Record.Instruction, s.Record.Input)).ToHashSet();
        Assert.All(Suite.Where(s => s.Split != SuiteSplit.Train), s => Assert.DoesNotContain((s.Record.Instruction, s.Record.Input), trainKeys));
        // Held-out phrasings never appear in train; held-out families and compositions never appear as train tasks.
        var trainInstructions = train.Select(s => s.Record.Instruction).ToHashSet();
        Assert.All(Suite.Where(s => s.Split == SuiteSplit.HeldOutPhrasings), s => Assert.DoesNotContain(s.Record.Instruction, trainInstructions));
        var trainTasks = train.Select(s => s.Record.Task).ToHashSet();
        Assert.All(Suite.Where(s => s.Split is SuiteSplit.HeldOutFamilies or SuiteSplit.HeldOutCompositions), s => Assert.DoesNotContain(s.Record.Task, trainTasks));
        Assert.All(Suite, s => Assert.True(s.Record.Output.Length <= 40, s.Record.Output));
        Assert.True(Suite.Count(s => s.Split == SuiteSplit.HeldOutCompositions) >= 20);
    }

    [Fact]
    public void ConditionalAndCompositionAnswersFollowTheirParts()
    {
        var byName = TaskFamilies.All.ToDictionary(f => f.Name);
        var c = Suite.First(s => s.Record.Task == "if_reverse_word_else_uppercase");
        Assert.StartsWith("If the word has more than 4 letters, ", c.Record.Instruction);
        Assert.Equal(c.Record.Input.Length > 4 ? new string(c.Record.Input.Reverse().ToArray()) : c.Record.Input.ToUpperInvariant(), c.Record.Output);
        var comp = Suite.First(s => s.Record.Task == "count_letters_then_even_odd");
        Assert.Equal(comp.Record.Input.Length % 2 == 0 ? "even" : "odd", comp.Record.Output);
    }

    [Fact]
    public void SameSeedSameSuiteOtherSeedOther()
    {
        var again = TaskSuiteGenerator.Generate();
        Assert.Equal(Suite.Select(s => s.Record with { Source = default }), again.Select(s => s.Record with { Source = default }));
        var other = TaskSuiteGenerator.Generate(new TaskSuiteOptions(Seed: 99));
        Assert.NotEqual(Suite.Select(s => s.Record.Input), other.Select(s => s.Record.Input));
    }

    [Fact]
    public void StepByStepShowsTheWorking()
    {
        var suite = TaskSuiteGenerator.Generate(new TaskSuiteOptions(StepByStep: true, SimplePerFamily: 5));
        var add = suite.First(s => s.Record.Task == "add");
        var parts = add.Record.Input.Split(" and ").Select(int.Parse).ToArray();
        Assert.Equal($"{parts[0]} + {parts[1]} = {parts[0] + parts[1]}\nAnswer: {parts[0] + parts[1]}", add.Record.Output);
    }
}
