using InstructTune.Evaluation;
using InstructTune.Evaluation.Generalization;
using InstructTune.Evaluation.MultiTurn;

namespace InstructTune.Tests.Evaluation;

public class GeneralizationMultiTurnTests
{
    private static List<TaskExample> Examples(string task, string instruction, int n) =>
        Enumerable.Range(0, n).Select(i => new TaskExample(task, instruction, $"{task}-in{i}", $"{task}-out{i}")).ToList();

    [Fact]
    public void FewShotPromptHasKExamplesFromTheSameTaskAndNeverTheQuery()
    {
        var train = Examples("upper", "Uppercase the input.", 6);
        var query = train[0];
        var shots = FewShot.Draw(query, 4, train, TaskClusterer.Cluster(train), new Random(1));
        Assert.Equal(4, shots.Count);
        Assert.DoesNotContain(query, shots);
        Assert.All(shots, s => Assert.Equal("upper", s.TaskId));
        var prompt = FewShot.Prompt(query, shots);
        Assert.Equal(4, prompt.Split("Example ").Length - 1);
        Assert.EndsWith("Input: upper-in0\nOutput:", prompt);
        Assert.Equal("Uppercase the input.\n\nInput: upper-in0\nOutput:", FewShot.Prompt(query, []));
    }

    [Fact]
    public void ClustersFollowInstructionStructure()
    {
        Assert.Equal(TaskClusterer.Signature("List 3 fruits as a bullet list."), TaskClusterer.Signature("List 5 cars as a bullet list."));
        Assert.NotEqual(TaskClusterer.Signature("List 3 fruits."), TaskClusterer.Signature("Translate this into German."));
        var clusters = new Dictionary<string, string> { ["a"] = "x", ["b"] = "x", ["c"] = "y", ["d"] = "z" };
        var held = TaskClusterer.HoldOutClusters(clusters, 0.25, seed: 2);
        Assert.True(held.Count >= 1);
        // Whole clusters only: a and b go together.
        Assert.Equal(held.Contains("a"), held.Contains("b"));
    }

    [Fact]
    public void ShotCurveAndSeenUnseenDrop()
    {
        // Fake model: copies the output pattern of the last example if there is one; knows seen tasks zero-shot.
        var train = Examples("seen", "Echo.", 5);
        var eval = new List<TaskExample> { new("seen", "Echo.", "seen-inX", "seen-outX"), new("new", "Reverse.", "new-inX", "new-outX") };
        var gen = new DelegateTextGenerator(p =>
        {
            var input = p.Split("Input: ").Last().Split('\n')[0];
            bool knows = input.StartsWith("seen") || p.Contains("Example 2:");
            return knows ? input.Replace("-in", "-out") : "?";
        });
        var r = GeneralizationEvaluator.Evaluate(train, eval, new HashSet<string> { "new" }, gen, (o, g) => o == g ? 1 : 0);
        Assert.Equal([0, 1, 2, 4], r.Shots.Select(s => s.K));
        Assert.All(r.Shots, s => Assert.Equal(1, s.Seen));
        Assert.Equal([0.0, 0.0, 1.0, 1.0], r.Shots.Select(s => s.Unseen));
        Assert.Equal(1, r.Shots[0].Drop);
        Assert.Equal(0, r.Shots[3].Drop);
        Assert.Single(r.UnseenByCluster);
    }

    [Fact]
    public void MultiTurnScoresRelevanceConsistencyAndCompletion()
    {
        var conv = new Conversation("c1",
        [
            new ConversationTurn("My name is Alice and I live in Lyon."),
            new ConversationTurn("What is my name?", Expect: ["Alice"], Forbid: ["Bob"]),
            new ConversationTurn("Suggest a restaurant in my city.", Expect: ["Lyon"]),
        ], Goal: ["restaurant"]);
        // Consistent model: remembers from the transcript.
        var good = new DelegateTextGenerator(p => p.EndsWith("What is my name?\nAssistant:") ? "Your name is Alice."
            : p.Contains("restaurant") ? "Try the restaurant Paul Bocuse in Lyon." : "Nice to meet you, Alice from Lyon.");
        var bad = new DelegateTextGenerator(p => p.Contains("What is my name?\nAssistant:") && !p.Contains("restaurant") ? "Your name is Bob." : "I don't know.");
        var g = MultiTurnEvaluator.Evaluate([conv], good);
        Assert.Equal(1, g.Consistency);
        Assert.Equal(1, g.Completion);
        Assert.True(g.Relevance > 0.6, g.Relevance.ToString());
        var b = MultiTurnEvaluator.Evaluate([conv], bad);
        Assert.Equal(2.0 / 3, b.Consistency, 1e-12);
        Assert.Equal(["Bob"], b.Conversations[0].Turns[1].Contradictions);
        Assert.Equal(0, b.Completion);
        Assert.True(b.Relevance < g.Relevance);
        // The transcript carried the earlier turns.
        Assert.Equal(3, g.Conversations[0].Turns.Count);
    }
}

public class FewShotDeterminismTests
{
    // The prompts for a given seed are fixed across processes: pin the draw for seed 0, k = 2.
    [Fact]
    public void ShotDrawsRepeatAcrossRuns()
    {
        var train = Enumerable.Range(0, 8).Select(i => new TaskExample("t", "Echo.", $"in{i}", $"out{i}")).ToList();
        var seen = new List<string>();
        var gen = new DelegateTextGenerator(p => { seen.Add(p); return ""; });
        GeneralizationEvaluator.Evaluate(train, [new TaskExample("t", "Echo.", "q", "q")], new HashSet<string>(), gen, (_, _) => 0, [2], seed: 0);
        var again = new List<string>();
        GeneralizationEvaluator.Evaluate(train, [new TaskExample("t", "Echo.", "q", "q")], new HashSet<string>(), new DelegateTextGenerator(p => { again.Add(p); return ""; }), (_, _) => 0, [2], seed: 0);
        Assert.Equal(seen, again);
        // System.Random(seed) is stable across .NET processes; this is the draw it gives for seed 0·1000003 + 2.
        var rng = new Random(2);
        var expected = train.OrderBy(_ => rng.Next()).Take(2).Select(e => e.Input).ToList();
        Assert.Contains($"Input: {expected[0]}\n", seen[0]);
        Assert.Contains($"Input: {expected[1]}\n", seen[0]);
    }
}
