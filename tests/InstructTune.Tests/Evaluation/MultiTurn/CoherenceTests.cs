using InstructTune.Evaluation.MultiTurn;
using InstructTune.Templates;

namespace InstructTune.Tests.Evaluation.MultiTurn;

/// <summary>
/// The four multi-turn dimensions on fakes whose behaviour is known: a model that answers each question the same way
/// every time against one that answers a re-asked question differently, one that answers the question asked against one
/// that answers the previous one, and a model that always says the same thing (which must not look consistent).
/// </summary>
public class CoherenceTests
{
    // Question → answer facts; a conversation asks three of them in turn.
    private static readonly (string Q, string A)[] Facts =
    [
        ("capital of France", "Paris"), ("colour of grass", "green"), ("largest planet", "Jupiter"), ("author of Hamlet", "Shakespeare"),
        ("boiling point of water", "100 degrees"), ("fastest land animal", "cheetah"), ("chemical symbol of gold", "Au"),
        ("square root of 81", "nine"), ("tallest mountain", "Everest"),
    ];

    private static List<CoherenceConversation> Conversations() => Enumerable.Range(0, 6).Select(i =>
    {
        var msgs = new List<ChatMessage>();
        for (int j = 0; j < 3; j++)
        {
            var (q, a) = Facts[(i + 2 * j) % Facts.Length];
            msgs.Add(new ChatMessage("user", $"What is the {q}?"));
            msgs.Add(new ChatMessage("assistant", a));
        }
        return new CoherenceConversation($"c{i}", msgs);
    }).ToList();

    private static string Answer(string question) =>
        Facts.FirstOrDefault(f => question.Contains(f.Q, StringComparison.Ordinal)).A ?? "I do not know";

    /// <summary>A fake model: replies by a rule over the history; its likelihood of a reply is high when the rule would
    /// have said it.</summary>
    private sealed class FakeModel(Func<IReadOnlyList<ChatMessage>, string> reply) : IConversationModel
    {
        public IReadOnlyList<string> Reply(IReadOnlyList<IReadOnlyList<ChatMessage>> histories) => histories.Select(reply).ToList();

        public IReadOnlyList<double> MeanLogProb(IReadOnlyList<(IReadOnlyList<ChatMessage> History, string Reply)> pairs) =>
            pairs.Select(p => reply(p.History) == p.Reply ? -0.1 : -3.0).ToList();
    }

    /// <summary>Bag of words over a fixed vocabulary: texts sharing words are similar.</summary>
    private sealed class BagOfWords : ITextEmbedder
    {
        public string Name => "bag-of-words";

        public IReadOnlyList<float[]> Embed(IReadOnlyList<string> texts) => texts.Select(t =>
        {
            var v = new float[64];
            foreach (var w in t.ToLowerInvariant().Split([' ', '?', '.', '\n'], StringSplitOptions.RemoveEmptyEntries))
                v[(w.GetHashCode(StringComparison.Ordinal) & 0x7fffffff) % 64] += 1;
            return v;
        }).ToList();
    }

    // Answers the last question, and names its subject (so the reply shares words with its own context).
    private static string Good(IReadOnlyList<ChatMessage> h)
    {
        var q = h[^1].Content;
        var fact = Facts.FirstOrDefault(f => q.Contains(f.Q, StringComparison.Ordinal));
        return fact.A is null ? "I do not know" : $"The {fact.Q} is {fact.A}";
    }

    [Fact]
    public void AnInconsistentAnswerToARepeatedQuestionScoresClearlyWorse()
    {
        var convs = Conversations();
        var consistent = CoherenceEvaluator.Evaluate(convs, new FakeModel(Good), new BagOfWords());
        // The same model, except that a question asked a second time in a conversation gets another fact's answer.
        var inconsistent = CoherenceEvaluator.Evaluate(convs, new FakeModel(h =>
        {
            var q = h[^1].Content;
            bool repeated = h.Take(h.Count - 1).Any(m => m.Role == "user" && m.Content == q);
            return repeated ? $"The answer is {Facts[(Array.FindIndex(Facts, f => q.Contains(f.Q, StringComparison.Ordinal)) + 4) % Facts.Length].A}" : Good(h);
        }), new BagOfWords());
        Assert.True(consistent.Consistency > 0.4, $"consistent {consistent.Consistency}");
        Assert.True(inconsistent.Consistency < consistent.Consistency - 0.5, $"inconsistent {inconsistent.Consistency} vs {consistent.Consistency}");
        // Only consistency saw the difference: the turns themselves were answered identically.
        Assert.Equal(consistent.Relevance, inconsistent.Relevance, 12);
        Assert.Equal(consistent.Completion, inconsistent.Completion, 12);
    }

    [Fact]
    public void AModelThatAlwaysSaysTheSameThingIsNotConsistentRelevantOrComplete()
    {
        var result = CoherenceEvaluator.Evaluate(Conversations(), new FakeModel(_ => "Paris"), new BagOfWords());
        Assert.Equal(0, result.Consistency, 9);
        Assert.InRange(result.Completion, 0, 0.2); // one turn in eighteen asks for Paris
        // Each turn's contrasts over the conversations sum to zero when every reply is the same text.
        Assert.Equal(0, result.Relevance, 9);
        var good = CoherenceEvaluator.Evaluate(Conversations(), new FakeModel(Good), new BagOfWords());
        Assert.True(good.Relevance > 0.1, $"relevance {good.Relevance}");
        Assert.True(good.Completion > 0.3, $"completion {good.Completion}");
    }

    [Fact]
    public void AnsweringThePreviousQuestionBreaksProgression()
    {
        var good = CoherenceEvaluator.Evaluate(Conversations(), new FakeModel(Good), new BagOfWords());
        // Lags one turn behind: answers (and expects) the previous question's answer.
        var lagging = CoherenceEvaluator.Evaluate(Conversations(), new FakeModel(h =>
        {
            var users = h.Where(m => m.Role == "user").ToList();
            var q = users.Count > 1 ? users[^2].Content : users[^1].Content;
            return Answer(q);
        }), new BagOfWords());
        var exact = CoherenceEvaluator.Evaluate(Conversations(), new FakeModel(h => Answer(h[^1].Content)), new BagOfWords());
        Assert.Equal(1.0, exact.Progression, 9);
        // Only the first turn (nothing to lag behind) progresses.
        Assert.Equal(1.0 / 3, lagging.Progression, 9);
        Assert.True(lagging.Completion < exact.Completion - 0.5);
        Assert.InRange(good.ProgressionChance, 0.33, 0.5);
    }

    [Fact]
    public void NeedsTwoAssistantTurns()
    {
        var one = new CoherenceConversation("x", [new ChatMessage("user", "hi"), new ChatMessage("assistant", "hello")]);
        Assert.False(CoherenceEvaluator.IsMultiTurn(one.Messages));
        Assert.Throws<ArgumentException>(() => CoherenceEvaluator.Evaluate([one], new FakeModel(_ => ""), new BagOfWords()));
    }
}
