namespace InstructTune.Data.Records;

/// <summary>
/// One tokenized training example, what the trainer consumes.
/// <list type="bullet">
/// <item><see cref="Ids"/>: token ids (T), BOS first when the tokenizer adds one, EOS last.</item>
/// <item><see cref="Labels"/>: (T) aligned with Ids, Hugging Face convention: Labels[t] = Ids[t] where the token is
/// learned, −100 elsewhere. The loss shifts: logits at t predict Labels[t+1].</item>
/// <item><see cref="Segments"/>: (T) <see cref="Templating.Segment"/> per token (0 template, 1 instruction, 2 input, 3 response).</item>
/// <item><see cref="TaskId"/>: index into the dataset's <see cref="TaskVocabulary"/>; <see cref="Complexity"/>: 0, 1, 2 or −1.</item>
/// <item><see cref="TruncatedTokens"/>: how many tokens truncation removed (0 when it fit).</item>
/// </list>
/// </summary>
public sealed record TokenizedExample(int[] Ids, int[] Labels, byte[] Segments, int TaskId, int Complexity, int TruncatedTokens = 0)
{
    public const int IgnoreIndex = -100;

    public int Length => Ids.Length;

    public int LearnedTokens
    {
        get { int n = 0; foreach (var l in Labels) if (l != IgnoreIndex) n++; return n; }
    }
}

/// <summary>Task labels ↔ dense ids, in first-seen order (stable for a given input order; stored in the cache manifest).</summary>
public sealed class TaskVocabulary
{
    private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    private readonly List<string> _names = [];

    public TaskVocabulary() { }

    public TaskVocabulary(IEnumerable<string> names) { foreach (var n in names) IdOf(n); }

    public IReadOnlyList<string> Names => _names;

    /// <summary>The id of a task, added when new. Safe to call from several threads once every task has been added.</summary>
    public int IdOf(string task)
    {
        if (_ids.TryGetValue(task, out var id)) return id;
        _ids[task] = _names.Count;
        _names.Add(task);
        return _names.Count - 1;
    }
}
