using InstructTune.Evaluation;
using InstructTune.Evaluation.Judge;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.Suites;
using InstructTune.Tests.Evaluation.Judge;

namespace InstructTune.Tests.Evaluation;

public class SuiteTests
{
    // Answers instructions with their first reference; few-shot prompts by copying the pattern of the examples
    // (uppercasing when the examples are uppercase); conversations from what was said earlier.
    private static readonly EvalSuite Builtin = BuiltinSuite.Create();

    private static string Oracle(string prompt)
    {
        var item = Builtin.Instructions.FirstOrDefault(i => i.Instruction == prompt);
        if (item != null) return item.References[0];
        if (prompt.EndsWith("Output:"))
        {
            var input = prompt.Split("Input: ").Last().Split('\n')[0];
            return prompt.Contains("uppercase") ? input.ToUpperInvariant() : input;
        }
        if (prompt.Contains("Assistant:"))
            return prompt.Contains("Priya") ? "Priya, you will need flour." : prompt.Contains("Rome") ? "Rome: try a vegetarian pasta." : "24, then 25";
        return "- cat\n- dog\n- cow";
    }

    [Fact]
    public async Task BuiltinSuiteRunsEveryPartAndAGoodModelBeatsABadOne()
    {
        var good = await SuiteRunner.RunAsync(Builtin, new DelegateTextGenerator(Oracle));
        var bad = await SuiteRunner.RunAsync(Builtin, new DelegateTextGenerator(_ => "I am not sure."));
        Assert.NotNull(good.PerLevel);
        Assert.Equal(Builtin.Instructions.Count, good.PerLevel!.Single(l => l.Level == "overall").Count);
        Assert.All(good.PerLevel!.Where(l => l.Level != "overall"), l => Assert.True(l.Count >= 4, l.Level));
        Assert.Equal(1.0, good.PerLevel!.Single(l => l.Level == "overall").Means["rougeL"], 1e-9);
        Assert.True(bad.PerLevel!.Single(l => l.Level == "overall").Means["rougeL"] < 0.2);
        Assert.Equal(3, good.Robustness!.Tasks.Count);
        Assert.Equal([0, 1, 2, 4], good.Generalization!.Shots.Select(s => s.K));
        Assert.True(good.Generalization.Shots[0].Seen > bad.Generalization!.Shots[0].Seen);
        Assert.Equal(1, good.MultiTurn!.Completion);
        Assert.Equal(0, bad.MultiTurn!.Completion);
        Assert.Null(good.Judge);
    }

    [Fact]
    public async Task JudgeScoresInstructionOutputs()
    {
        var judge = new LlmJudge(new GeneratorJudgeBackend(new DelegateTextGenerator(_ => "{\"score\": 8}"), "fake"), new JudgeConfig { MaxAttempts = 1 });
        var r = await SuiteRunner.RunAsync(Builtin with { Robustness = [], Conversations = [], Generalization = null }, new DelegateTextGenerator(Oracle), judge);
        Assert.Equal(Builtin.Instructions.Count, r.Judge!.Made);
        Assert.Equal(8, r.Judge.MeanScore);
        Assert.Equal(7.0 / 9, r.PerLevel!.Single(l => l.Level == "conditional").Means["irs"], 1e-12);
        Assert.Null(r.Robustness);
    }

    [Fact]
    public void SuiteFilesRoundTripAndBadKeysAreNamed()
    {
        var dir = Directory.CreateTempSubdirectory("itune-suite-");
        try
        {
            var path = Path.Combine(dir.FullName, "suite.json");
            File.WriteAllText(path, EvalSuite.Serialize(Builtin));
            var loaded = EvalSuite.Load(path);
            Assert.Equal(Builtin.Instructions.Count, loaded.Instructions.Count);
            Assert.Equal(Builtin.Generalization!.Eval.Count, loaded.Generalization!.Eval.Count);
            Assert.Equal(["reverse", "count"], loaded.Generalization.HeldOutTasks);
            Assert.Equal(Builtin.Conversations[1].Turns[2].Forbid, loaded.Conversations[1].Turns[2].Forbid);

            File.WriteAllText(path, "{\n \"name\": \"x\",\n \"instructions\": [{\"id\": \"a\", \"instruction\": \"hi\", \"references\": [], \"colour\": 1}]\n}");
            var ex = Assert.Throws<EvalInputException>(() => EvalSuite.Load(path));
            Assert.Contains("colour", ex.Message);
            Assert.Contains("suite.json:3", ex.Message);

            File.WriteAllText(path, "{\"instructions\": [{\"id\": \"a\", \"instruction\": \"\", \"references\": []}, {\"id\": \"a\", \"instruction\": \"x\", \"references\": []}]}");
            ex = Assert.Throws<EvalInputException>(() => EvalSuite.Load(path));
            Assert.Contains("instructions[0].instruction: missing", ex.Message);
            Assert.Contains("duplicate id \"a\"", ex.Message);
        }
        finally { dir.Delete(true); }
    }
}
