using System.Text.Json.Nodes;
using InstructTune.Evaluation.Metrics;
using InstructTune.Templates;

namespace InstructTune.Evaluation.MultiTurn;

/// <summary>What multi-turn coherence needs from the evaluated model: its next reply after a conversation so far,
/// and how likely it finds a given reply there (mean log-probability per token).</summary>
public interface IConversationModel
{
    /// <summary>The assistant's next reply after each history (each ends with a user turn), in order.</summary>
    IReadOnlyList<string> Reply(IReadOnlyList<IReadOnlyList<ChatMessage>> histories);

    /// <summary>Mean log p(token) over the tokens of each reply given its history (the model's own likelihood).</summary>
    IReadOnlyList<double> MeanLogProb(IReadOnlyList<(IReadOnlyList<ChatMessage> History, string Reply)> pairs);
}

/// <summary>A sentence embedder (mean-pooled hidden states of a checkpoint, or an embeddings endpoint).</summary>
public interface ITextEmbedder
{
    string Name { get; }
    IReadOnlyList<float[]> Embed(IReadOnlyList<string> texts);
}

/// <summary>One conversation of the user's data: its messages in order (system, user, assistant, user, assistant…).</summary>
public sealed record CoherenceConversation(string Id, IReadOnlyList<ChatMessage> Messages);

/// <summary>One assistant turn: the model's reply, its relevance contrast, whether the model's likelihood put the
/// reference reply above the neighbouring turns' replies, and its token F1 with the reference.</summary>
public sealed record CoherenceTurn(int Turn, string User, string Reference, string Reply, double Relevance, bool? Progresses, double F1);

/// <summary>One conversation's scores (NaN where a dimension does not apply, e.g. a single turn has no neighbours).</summary>
public sealed record CoherenceRow(string Id, IReadOnlyList<CoherenceTurn> Turns, double Relevance, double Consistency,
    string ReaskedReply, double Progression, double Completion, double LastTurnF1);

/// <summary>The four dimensions over all conversations, with the chance level of each.</summary>
public sealed record CoherenceResult(IReadOnlyList<CoherenceRow> Conversations, double Relevance, double Consistency,
    double Progression, double ProgressionChance, double Completion, double LastTurnF1, string Embedder)
{
    public const string Definition =
        "Multi-turn coherence, on the data's own conversations (records with two or more assistant turns). Every turn is " +
        "generated from the reference history (teacher-forced: the conversation as the data has it up to that user turn). " +
        "Contextual relevance: cosine similarity of the reply's embedding with its own conversation so far, minus the mean " +
        "similarity with the other conversations at the same turn (0 = no more related to its context than to anyone " +
        "else's; an empty reply scores 0); embeddings are mean-pooled last hidden states of the embedding model, centred " +
        "(the mean over all replies and contexts subtracted) against the common direction such states share. " +
        "Consistency: after the last turn the first user turn is asked again; token F1 (SQuAD) between the two answers to " +
        "the same question, minus the mean F1 between the first answer and the answers to different questions (0 = agrees " +
        "with itself no more than with unrelated answers, so a model that always says the same thing scores 0, not 1). " +
        "Logical progression: at each turn that has a neighbouring turn, whether the evaluated model's own mean " +
        "log-likelihood per token puts the reference reply of this turn above the reference replies of the previous and the " +
        "next turn (repeating itself or jumping ahead); chance is 1/(1 + neighbours). Task completion: how much of what the " +
        "conversation asked for was delivered: the mean over its turns of the reply's token F1 (SQuAD) with the reference " +
        "reply (last_turn_f1 gives the final turn alone).";

    public JsonObject ToJson()
    {
        static JsonNode? N(double v) => double.IsFinite(v) ? Math.Round(v, 6) : null;
        return new JsonObject
        {
            ["conversations"] = Conversations.Count,
            ["turns"] = Conversations.Sum(c => c.Turns.Count),
            ["relevance"] = N(Relevance),
            ["consistency"] = N(Consistency),
            ["progression"] = N(Progression),
            ["progression_chance"] = N(ProgressionChance),
            ["completion"] = N(Completion),
            ["last_turn_f1"] = N(LastTurnF1),
            ["embedder"] = Embedder,
            ["definition"] = Definition,
            ["by_conversation"] = new JsonArray(Conversations.Select(c => (JsonNode?)new JsonObject
            {
                ["id"] = c.Id,
                ["relevance"] = N(c.Relevance),
                ["consistency"] = N(c.Consistency),
                ["progression"] = N(c.Progression),
                ["completion"] = N(c.Completion),
                ["last_turn_f1"] = N(c.LastTurnF1),
                ["reasked_reply"] = c.ReaskedReply,
                ["turns"] = new JsonArray(c.Turns.Select(t => (JsonNode?)new JsonObject
                {
                    ["turn"] = t.Turn, ["user"] = t.User, ["reference"] = t.Reference, ["reply"] = t.Reply,
                    ["relevance"] = N(t.Relevance), ["progresses"] = t.Progresses, ["f1"] = N(t.F1),
                }).ToArray()),
            }).ToArray()),
        };
    }
}

/// <summary>
/// Multi-turn coherence over four dimensions computed from the model's behaviour (see
/// <see cref="CoherenceResult.Definition"/>): all replies (every turn of every conversation, and the re-asked first
/// question) in one <see cref="IConversationModel.Reply"/> call, all likelihoods in one
/// <see cref="IConversationModel.MeanLogProb"/> call, all texts embedded in one <see cref="ITextEmbedder.Embed"/> call.
/// </summary>
public static class CoherenceEvaluator
{
    /// <summary>The conversations of a data file that have at least two assistant turns, each ending with one.</summary>
    public static bool IsMultiTurn(IReadOnlyList<ChatMessage>? messages) =>
        messages is not null && messages.Count(m => m.Role == "assistant") >= 2;

    private sealed record Turn(int Index, IReadOnlyList<ChatMessage> History, string User, string Reference);

    private static List<Turn> Turns(CoherenceConversation c)
    {
        var turns = new List<Turn>();
        for (int i = 0; i < c.Messages.Count; i++)
        {
            if (c.Messages[i].Role != "assistant" || i == 0) continue;
            var history = c.Messages.Take(i).ToList();
            var user = history.LastOrDefault(m => m.Role == "user")?.Content ?? "";
            turns.Add(new Turn(turns.Count, history, user, c.Messages[i].Content));
        }
        return turns;
    }

    public static CoherenceResult Evaluate(IReadOnlyList<CoherenceConversation> conversations, IConversationModel model, ITextEmbedder embedder)
    {
        var turns = conversations.Select(Turns).ToList();
        if (turns.Any(t => t.Count < 2)) throw new ArgumentException("every conversation needs at least two assistant turns");

        // 1. Replies: every turn, then each conversation's first question asked again after its last turn.
        var histories = new List<IReadOnlyList<ChatMessage>>();
        foreach (var ts in turns) histories.AddRange(ts.Select(t => t.History));
        foreach (var (c, ts) in conversations.Zip(turns))
            histories.Add([.. c.Messages.Take(LastAssistant(c.Messages) + 1), new ChatMessage("user", ts[0].User)]);
        var replies = model.Reply(histories).Select(r => r.Trim()).ToList();
        if (replies.Count != histories.Count) throw new InvalidOperationException($"{replies.Count} replies for {histories.Count} histories");
        var reply = new List<string[]>();
        int k = 0;
        foreach (var ts in turns) { reply.Add(replies.Skip(k).Take(ts.Count).ToArray()); k += ts.Count; }
        var reasked = replies.Skip(k).ToArray();

        // 2. Relevance: embeddings of every reply and every context (history as text).
        var contexts = turns.Select(ts => ts.Select(t => string.Join("\n", t.History.Select(m => m.Content))).ToArray()).ToList();
        var texts = reply.SelectMany(r => r).Concat(contexts.SelectMany(c => c)).ToList();
        var vectors = Centre(embedder.Embed(texts));
        int nReplies = reply.Sum(r => r.Length);
        var replyVec = new List<float[][]>();
        var ctxVec = new List<float[][]>();
        k = 0;
        foreach (var r in reply) { replyVec.Add(vectors.Skip(k).Take(r.Length).ToArray()); k += r.Length; }
        foreach (var c in contexts) { ctxVec.Add(vectors.Skip(k).Take(c.Length).ToArray()); k += c.Length; }

        // 3. Progression: the model's likelihood of this turn's reference vs its neighbours' at this turn.
        var pairs = new List<(IReadOnlyList<ChatMessage>, string)>();
        var slots = new List<(int C, int T, int Alternatives)>();
        for (int c = 0; c < turns.Count; c++)
            for (int t = 0; t < turns[c].Count; t++)
            {
                var alts = new[] { t - 1, t + 1 }.Where(j => j >= 0 && j < turns[c].Count && turns[c][j].Reference.Trim() != turns[c][t].Reference.Trim())
                    .Select(j => turns[c][j].Reference).ToList();
                if (alts.Count == 0) continue;
                pairs.Add((turns[c][t].History, turns[c][t].Reference));
                foreach (var a in alts) pairs.Add((turns[c][t].History, a));
                slots.Add((c, t, alts.Count));
            }
        var logp = pairs.Count == 0 ? [] : model.MeanLogProb(pairs);
        var progresses = new Dictionary<(int, int), bool>();
        double chance = 0;
        k = 0;
        foreach (var (c, t, alts) in slots)
        {
            double own = logp[k];
            bool best = Enumerable.Range(1, alts).All(j => own > logp[k + j]);
            progresses[(c, t)] = best;
            chance += 1.0 / (1 + alts);
            k += 1 + alts;
        }

        // 4. Rows.
        var rows = new List<CoherenceRow>();
        for (int c = 0; c < turns.Count; c++)
        {
            var turnRows = new List<CoherenceTurn>();
            for (int t = 0; t < turns[c].Count; t++)
            {
                double rel = 0;
                if (reply[c][t].Length > 0 && turns.Count > 1)
                {
                    double own = Cosine(replyVec[c][t], ctxVec[c][t]);
                    double others = Enumerable.Range(0, turns.Count).Where(o => o != c)
                        .Average(o => Cosine(replyVec[c][t], ctxVec[o][Math.Min(t, ctxVec[o].Length - 1)]));
                    rel = own - others;
                }
                else if (turns.Count == 1) rel = double.NaN;
                turnRows.Add(new CoherenceTurn(t, turns[c][t].User, turns[c][t].Reference, reply[c][t], rel,
                    progresses.TryGetValue((c, t), out var p) ? p : null, SquadMetrics.F1(reply[c][t], [turns[c][t].Reference])));
            }
            // Answers to different questions: the later turns here and the first turns of the other conversations.
            var first = reply[c][0];
            var different = new List<string>();
            for (int t = 1; t < turns[c].Count; t++) if (turns[c][t].User.Trim() != turns[c][0].User.Trim()) different.Add(reply[c][t]);
            for (int o = 0; o < turns.Count; o++) if (o != c && turns[o][0].User.Trim() != turns[c][0].User.Trim()) different.Add(reply[o][0]);
            double same = SquadMetrics.F1(reasked[c], [first]);
            double chanceAgreement = different.Count == 0 ? 0 : different.Average(d => SquadMetrics.F1(d, [first]));
            var progressed = turnRows.Where(r => r.Progresses is not null).ToList();
            rows.Add(new CoherenceRow(conversations[c].Id, turnRows, turnRows.Average(r => r.Relevance), same - chanceAgreement, reasked[c],
                progressed.Count == 0 ? double.NaN : progressed.Count(r => r.Progresses == true) / (double)progressed.Count,
                turnRows.Average(r => r.F1), turnRows[^1].F1));
        }
        double Mean(Func<CoherenceRow, double> f) => rows.Select(f).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average();
        return new CoherenceResult(rows, Mean(r => r.Relevance), Mean(r => r.Consistency),
            slots.Count == 0 ? double.NaN : progresses.Values.Count(v => v) / (double)slots.Count,
            slots.Count == 0 ? double.NaN : chance / slots.Count, Mean(r => r.Completion), Mean(r => r.LastTurnF1), embedder.Name);
    }

    private static int LastAssistant(IReadOnlyList<ChatMessage> m)
    {
        for (int i = m.Count - 1; i >= 0; i--) if (m[i].Role == "assistant") return i;
        return m.Count - 1;
    }

    /// <summary>Subtracts the mean vector from every vector: mean-pooled hidden states share a large common direction
    /// (anisotropy), which makes every cosine close to 1 and hides the differences relevance measures.</summary>
    public static IReadOnlyList<float[]> Centre(IReadOnlyList<float[]> vectors)
    {
        if (vectors.Count == 0) return vectors;
        var mean = new double[vectors[0].Length];
        foreach (var v in vectors) for (int i = 0; i < mean.Length; i++) mean[i] += v[i];
        for (int i = 0; i < mean.Length; i++) mean[i] /= vectors.Count;
        return vectors.Select(v => v.Select((x, i) => (float)(x - mean[i])).ToArray()).ToList();
    }

    /// <summary>Cosine similarity in double (0 when either vector is zero).</summary>
    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }
}
