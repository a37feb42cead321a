using System.Text.Json;
using InstructTune.Data.Records;

namespace InstructTune.Data.Quality;

/// <summary>Quality settings. Thresholds ≤ 0 (or null) switch a check off.</summary>
/// <param name="ExactDedup">Drop records whose normalised instruction+input was seen before.</param>
/// <param name="NearDupJaccard">MinHash LSH threshold on instruction+input+output (e.g. 0.8).</param>
/// <param name="RougeLMax">For generated data: drop an instruction whose ROUGE-L against the pool is ≥ this (Self-Instruct: 0.7).</param>
/// <param name="NearOnPromptOnly">Near duplicates are judged on the prompt alone.</param>
/// <param name="DedupOverResponse">Exact and near duplicates are judged on prompt + response (default: exact on the prompt, near on both).</param>
public sealed record QualityOptions(bool ExactDedup = true, double NearDupJaccard = 0, double RougeLMax = 0, bool KeepFlagged = false, bool DedupOverResponse = false,
    bool NearOnPromptOnly = false);

/// <summary>Counts for one task: kept, and flagged/rejected by rule.</summary>
public sealed class TaskQuality
{
    [System.Text.Json.Serialization.JsonPropertyName("seen")] public int Seen { get; set; }
    [System.Text.Json.Serialization.JsonPropertyName("kept")] public int Kept { get; set; }
    [System.Text.Json.Serialization.JsonPropertyName("flagged")] public SortedDictionary<string, int> Flagged { get; init; } = new(StringComparer.Ordinal);
    [System.Text.Json.Serialization.JsonPropertyName("rejected")] public SortedDictionary<string, int> Rejected { get; init; } = new(StringComparer.Ordinal);
}

/// <summary>
/// The quality stage: exact de-duplication on normalised instruction+input, MinHash LSH near-duplicates, ROUGE-L
/// novelty against the pool, then the rules (length, ratio, JSON format, score thresholds, complexity) over the
/// scorers' scores. The first rule that rejects decides; otherwise any rule that flags sends the record to the
/// review queue (JSONL, with the rules and scores). A report counts kept/flagged/rejected by rule, per task.
/// </summary>
public sealed class QualityFilter(QualityOptions options, IReadOnlyList<IQualityScorer>? scorers = null, IReadOnlyList<QualityRule>? rules = null,
    TextWriter? reviewQueue = null)
{
    public const string ExactDuplicate = "exact_duplicate";
    public const string NearDuplicate = "near_duplicate";
    public const string RougeLSimilar = "rouge_l_similar";

    private readonly HashSet<UInt128> _exact = [];
    private readonly MinHashLsh? _lsh = options.NearDupJaccard > 0 ? new MinHashLsh(options.NearDupJaccard) : null;
    private readonly List<string[]> _pool = [];
    private readonly IReadOnlyList<IQualityScorer> _scorers = scorers ?? [];
    private readonly IReadOnlyList<QualityRule> _rules = rules ?? [];

    public SortedDictionary<string, TaskQuality> Report { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether a rejection reason is a duplicate check (not a quality rule).</summary>
    public static bool IsDuplicateReason(string reason) => reason is ExactDuplicate or NearDuplicate or RougeLSimilar;
    public int DuplicatesRemoved { get; private set; }

    public IEnumerable<InstructionRecord> Apply(IEnumerable<InstructionRecord> records)
    {
        foreach (var r in records)
        {
            var task = Report.TryGetValue(r.Task, out var t) ? t : Report[r.Task] = new TaskQuality();
            task.Seen++;
            var rejectedBy = DuplicateCheck(r);
            if (rejectedBy != null)
            {
                DuplicatesRemoved++;
                task.Rejected[rejectedBy] = task.Rejected.GetValueOrDefault(rejectedBy) + 1;
                continue;
            }
            var scores = _scorers.ToDictionary(s => s.Name, s => s.Score(r));
            var flagged = new List<string>();
            foreach (var rule in _rules)
            {
                var v = rule.Decide(r, scores);
                if (v == Verdict.Reject) { rejectedBy = rule.Name; break; }
                if (v == Verdict.Review) flagged.Add(rule.Name);
            }
            if (rejectedBy != null) { task.Rejected[rejectedBy] = task.Rejected.GetValueOrDefault(rejectedBy) + 1; continue; }
            if (flagged.Count > 0)
            {
                foreach (var f in flagged) task.Flagged[f] = task.Flagged.GetValueOrDefault(f) + 1;
                reviewQueue?.WriteLine(JsonSerializer.Serialize(new
                {
                    file = r.Source.File, line = r.Source.Line, index = r.Source.Index, task = r.Task,
                    rules = flagged, scores, instruction = r.Instruction, input = r.Input, output = r.Output,
                }));
                if (!options.KeepFlagged) continue;
            }
            task.Kept++;
            yield return r;
        }
    }

    private string? DuplicateCheck(InstructionRecord r)
    {
        var prompt = r.IsChat ? QualityRule.Prompt(r) : r.Instruction + "\n" + r.Input;
        if (options.ExactDedup)
        {
            var norm = TextNormalizer.Normalize(options.DedupOverResponse ? prompt + "\n" + QualityRule.Output(r) : prompt);
            var key = new UInt128(TextNormalizer.Hash64(norm), TextNormalizer.Hash64(norm, 0x9E3779B97F4A7C15UL));
            if (!_exact.Add(key)) return ExactDuplicate;
        }
        if (_lsh != null && _lsh.AddOrFindDuplicate(options.NearOnPromptOnly ? prompt : prompt + "\n" + QualityRule.Output(r)) >= 0) return NearDuplicate;
        if (options.RougeLMax > 0)
        {
            var words = TextNormalizer.Words(r.IsChat ? prompt : r.Instruction);
            foreach (var other in _pool)
                if (RougeL.FMeasure(words, other) >= options.RougeLMax) return RougeLSimilar;
            _pool.Add(words);
        }
        return null;
    }
}
