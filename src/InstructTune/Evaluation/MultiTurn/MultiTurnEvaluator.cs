using System.Text;
using InstructTune.Evaluation.Fidelity;

namespace InstructTune.Evaluation.MultiTurn;

/// <summary>One user turn. <see cref="Expect"/>: what a relevant, context-aware reply must mention (often facts
/// from earlier turns); <see cref="Forbid"/>: what would contradict earlier turns.</summary>
public sealed record ConversationTurn(string User, IReadOnlyList<string>? Expect = null, IReadOnlyList<string>? Forbid = null);

/// <summary>A conversation whose later turns depend on earlier ones; <see cref="Goal"/> must be met by the end.</summary>
public sealed record Conversation(string Id, IReadOnlyList<ConversationTurn> Turns, IReadOnlyList<string> Goal);

public sealed record TurnResult(int Turn, string Reply, double Relevance, bool Consistent, IReadOnlyList<string> Contradictions);

public sealed record ConversationResult(string Id, IReadOnlyList<TurnResult> Turns, double Relevance, double Consistency, bool Completed);

public sealed record MultiTurnResult(IReadOnlyList<ConversationResult> Conversations, double Relevance, double Consistency, double Completion);

/// <summary>
/// Plays each conversation turn by turn through the generator (all conversations' turn t in one batch; the
/// prompt is the transcript so far) and scores: contextual relevance (share of the turn's expected mentions
/// present, or without them the share of the user's content words taken up), consistency (no forbidden,
/// contradicting statement), and task completion (all goal terms present in the final reply).
/// </summary>
public static class MultiTurnEvaluator
{
    private static readonly HashSet<string> Stop = new(StringComparer.OrdinalIgnoreCase)
    {
        "what", "which", "that", "this", "with", "from", "have", "your", "about", "would", "could", "should", "please",
        "there", "their", "they", "them", "then", "when", "where", "will", "just", "also", "into", "some", "more",
    };

    public static MultiTurnResult Evaluate(IReadOnlyList<Conversation> conversations, ITextGenerator generator)
    {
        var transcripts = conversations.Select(_ => new StringBuilder()).ToList();
        var results = conversations.Select(_ => new List<TurnResult>()).ToList();
        int maxTurns = conversations.Select(c => c.Turns.Count).DefaultIfEmpty(0).Max();
        for (int t = 0; t < maxTurns; t++)
        {
            var active = Enumerable.Range(0, conversations.Count).Where(i => t < conversations[i].Turns.Count).ToList();
            foreach (var i in active) transcripts[i].Append($"User: {conversations[i].Turns[t].User}\nAssistant:");
            var replies = generator.Generate(active.Select(i => transcripts[i].ToString()).ToList());
            for (int j = 0; j < active.Count; j++)
            {
                int i = active[j];
                var reply = replies[j].Trim();
                transcripts[i].Append(' ').Append(reply).Append('\n');
                results[i].Add(ScoreTurn(t, conversations[i].Turns[t], reply));
            }
        }
        var convResults = conversations.Select((c, i) => new ConversationResult(c.Id, results[i],
            results[i].Count == 0 ? double.NaN : results[i].Average(r => r.Relevance),
            results[i].Count == 0 ? double.NaN : results[i].Count(r => r.Consistent) / (double)results[i].Count,
            results[i].Count > 0 && c.Goal.All(g => FidelityChecker.Contains(results[i][^1].Reply, g)))).ToList();
        return new MultiTurnResult(convResults,
            convResults.Select(r => r.Relevance).DefaultIfEmpty(double.NaN).Average(),
            convResults.Select(r => r.Consistency).DefaultIfEmpty(double.NaN).Average(),
            convResults.Count == 0 ? double.NaN : convResults.Count(r => r.Completed) / (double)convResults.Count);
    }

    public static TurnResult ScoreTurn(int index, ConversationTurn turn, string reply)
    {
        double relevance;
        if (turn.Expect is { Count: > 0 } expect)
            relevance = expect.Count(e => FidelityChecker.Contains(reply, e)) / (double)expect.Count;
        else
        {
            var content = System.Text.RegularExpressions.Regex.Matches(turn.User, @"\p{L}{4,}").Select(m => m.Value)
                .Where(w => !Stop.Contains(w)).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            relevance = content.Count == 0 ? (reply.Length > 0 ? 1 : 0)
                : content.Count(w => FidelityChecker.Contains(reply, w)) / (double)content.Count;
        }
        var contradictions = (turn.Forbid ?? []).Where(f => FidelityChecker.Contains(reply, f)).ToList();
        return new TurnResult(index, reply, relevance, contradictions.Count == 0, contradictions);
    }
}
