using InstructTune.Data.Records;
using InstructTune.Evaluation.MultiTurn;
using InstructTune.Evaluation.Run;
using InstructTune.Models.Inference;
using InstructTune.Tokenizers;
using ChatMessage = InstructTune.Templates.ChatMessage;

namespace InstructTune.Evaluation.ModelBackends;

/// <summary>
/// A checkpoint (with its adapter) as multi-turn coherence sees it: a history is formatted with the run's prompt
/// format as a chat record (<see cref="PromptFormatter.Format(InstructionRecord)"/>: the turns before the reply, the
/// generation prompt), replies are generated in batches with the run's decoding settings (as <c>eval run</c>'s
/// predictions), and likelihoods are <see cref="ContinuationScorer"/>'s (lm-eval's split) divided by the tokens.
/// </summary>
public sealed class ModelConversation(LoadedModel loaded, PromptFormatter formatter, EvalGenerationSettings settings, string referencePrefix = "")
    : IConversationModel
{
    private readonly InferenceTextGenerator _generator = new(loaded.Model, loaded.Tokenizer, formatter, settings);
    private readonly ContinuationScorer _scorer = new(loaded.Model, loaded.Tokenizer, formatter.AddSpecialTokens);

    public string Prompt(IReadOnlyList<ChatMessage> history) => formatter.Format(Record(history));

    private static InstructionRecord Record(IReadOnlyList<ChatMessage> history) =>
        new("", "", "", "eval", Messages: [.. history, new ChatMessage("assistant", "")]);

    public IReadOnlyList<string> Reply(IReadOnlyList<IReadOnlyList<ChatMessage>> histories) =>
        _generator.GenerateRecords(histories.Select(Record).ToList());

    public IReadOnlyList<double> MeanLogProb(IReadOnlyList<(IReadOnlyList<ChatMessage> History, string Reply)> pairs)
    {
        var result = new List<double>(pairs.Count);
        const int Batch = 16;
        for (int start = 0; start < pairs.Count; start += Batch)
            foreach (var s in _scorer.Score(pairs.Skip(start).Take(Batch).Select(p => (Prompt(p.History), referencePrefix + p.Reply)).ToList()))
                result.Add(s.Tokens > 0 ? s.LogProb / s.Tokens : double.NegativeInfinity);
        return result;
    }
}

/// <summary>Sentence embeddings from a checkpoint: the mean-pooled last hidden state (after the final norm, as
/// <c>itune serve</c>'s /v1/embeddings) of the text's tokens; the empty text is the BOS token alone; text longer than
/// max_position_embeddings keeps its last tokens.</summary>
public sealed class ModelEmbedder(InferenceModel model, ITokenizer tokenizer, string name) : ITextEmbedder
{
    public string Name { get; } = name;

    public IReadOnlyList<float[]> Embed(IReadOnlyList<string> texts) => texts.Select(t =>
    {
        var ids = tokenizer.Encode(t, addSpecialTokens: true).Ids;
        if (ids.Length == 0) ids = [tokenizer.BosId ?? 0];
        int max = model.Config.MaxPositionEmbeddings;
        if (ids.Length > max) ids = ids[^max..];
        return model.MeanPooledHidden(ids);
    }).ToList();
}
