using System.Text.Json;
using InstructTune.Common;
using InstructTune.Data.Loading;
using InstructTune.Data.Records;
using InstructTune.Data.Templating;
using InstructTune.Templates;
using InstructTune.Tokenizers;

namespace InstructTune.Data.Preference;

/// <summary>What loading feedback data kept and refused (written as run_dir/data/preference_stats.json).</summary>
public sealed record PreferenceStats(int RecordsRead, int ItemsKept, int Desirable, int Undesirable, int Truncated,
    IReadOnlyDictionary<string, int> RejectedByReason)
{
    /// <summary>Kept items whose record has a <c>margin</c> (TRL's reward-modelling column).</summary>
    public int WithMargin { get; init; }
}

/// <summary>
/// Feedback records → <see cref="PreferenceData"/>: each completion is rendered after its prompt by the prompt
/// template (a built-in, a format string, or <c>chat</c>: the tokenizer's own chat template), tokenized once, and
/// labelled on that completion only (its text, the end-of-turn marker and EOS — earlier assistant turns of a
/// multi-turn prompt are context). A prompt that leaves no room in <c>max_seq_len</c> is skipped; a completion that
/// runs past it is cut at the end. Refused and skipped records are counted by reason and listed in rejected.jsonl;
/// with <paramref name="skipInvalid"/> false a malformed record stops the run naming its file, line and field.
/// </summary>
public static class PreferenceLoader
{
    public static (PreferenceData Data, PreferenceStats Stats) Load(string path, bool paired, ITokenizer tokenizer, IPromptTemplate template,
        int maxSeqLen, int padId, double scoreThreshold, bool skipInvalid, string? rejectedLog = null)
    {
        var tokenize = new ExampleTokenizer(tokenizer, template, new MaskOptions(MaxSeqLen: 0));
        var pairs = new List<(TokenizedExample, TokenizedExample)>();
        var unpaired = new List<(TokenizedExample, bool)>();
        var margins = new List<double>();
        int withMargin = 0;
        var rejected = new SortedDictionary<string, int>(StringComparer.Ordinal);
        int read = 0, truncated = 0, desirable = 0;
        using var log = rejectedLog != null ? new RejectedLog(rejectedLog) : null;
        void Refuse(RecordRejection r, bool always)
        {
            if (!always && !skipInvalid) throw new DataFormatException(r);
            rejected[r.Reason] = rejected.GetValueOrDefault(r.Reason) + 1;
            log?.Write(r);
        }
        foreach (var (record, problem) in PreferenceRecords.Read(path, scoreThreshold))
        {
            read++;
            if (problem != null)
            {
                // Identical chosen/rejected is a quality filter (skipped and counted), not a malformed record.
                Refuse(problem, always: problem.Reason == PreferenceRecords.IdenticalPair);
                continue;
            }
            var r = record!;
            if (r.IsPair != paired)
            {
                Refuse(new RecordRejection(r.Source, paired ? "rejected" : "label", RejectReason.MissingField, paired
                    ? "training.objective needs (chosen, rejected) pairs; this record is unpaired feedback"
                    : "training.objective kto needs unpaired feedback (completion + label); this record is a pair"), always: false);
                continue;
            }
            var a = Tokenize(tokenize, r, r.Chosen, maxSeqLen);
            var b = paired ? Tokenize(tokenize, r, r.Rejected!, maxSeqLen) : null;
            if (a == null || (paired && b == null))
            {
                Refuse(new RecordRejection(r.Source, "prompt", PreferenceRecords.PromptTooLong, $"the prompt fills data.max_seq_len ({maxSeqLen}) tokens: no room for the completion"), always: true);
                continue;
            }
            if (a.TruncatedTokens > 0 || (b?.TruncatedTokens ?? 0) > 0) truncated++;
            if (paired) { pairs.Add((a, b!)); margins.Add(r.Margin ?? 0); }
            else { unpaired.Add((a, r.Desirable)); if (r.Desirable) desirable++; }
            if (r.Margin != null) withMargin++;
        }
        int kept = paired ? pairs.Count : unpaired.Count;
        if (kept == 0) throw new DataFormatException($"data.path: {path} has no usable {(paired ? "preference pairs" : "feedback examples")} ({read} records read)");
        if (!paired && (desirable == 0 || desirable == kept))
            throw new DataFormatException($"data.path: {path}: KTO needs both desirable and undesirable examples ({desirable} of {kept} are desirable)");
        var stats = new PreferenceStats(read, kept, paired ? kept : desirable, paired ? kept : kept - desirable, truncated, rejected) { WithMargin = withMargin };
        return (paired ? PreferenceData.Pairs(pairs, padId, withMargin > 0 ? margins : null) : PreferenceData.Unpaired(unpaired, padId, maxSeqLen), stats);
    }

    /// <summary>Prompt + completion, labelled on the completion only; null when the prompt alone fills maxSeqLen.</summary>
    public static TokenizedExample? Tokenize(ExampleTokenizer tokenize, FeedbackRecord r, string completion, int maxSeqLen)
    {
        var record = r.Prompt is [{ Role: "user" } only]
            ? new InstructionRecord(only.Content, "", completion, "feedback", r.Source)
            : new InstructionRecord("", "", "", "feedback", r.Source, [.. r.Prompt, new ChatMessage("assistant", completion)]);
        var e = tokenize.Tokenize(record, 0);
        var labels = (int[])e.Labels.Clone();
        int start = CompletionStart(labels);
        if (start < 0) return null;
        for (int t = 0; t < start; t++) labels[t] = TokenizedExample.IgnoreIndex;   // earlier assistant turns are context
        e = e with { Labels = labels };
        if (maxSeqLen <= 0 || e.Length <= maxSeqLen) return e;
        if (start >= maxSeqLen - 1) return null;
        return e with { Ids = e.Ids[..maxSeqLen], Labels = labels[..maxSeqLen], Segments = e.Segments[..maxSeqLen], TruncatedTokens = e.Length - maxSeqLen };
    }

    /// <summary>
    /// Where the rated completion starts: the last run of labelled tokens, not counting a lone appended EOS that
    /// template text (e.g. ChatML's newline after &lt;|im_end|&gt;) separates from it. −1 when nothing is labelled.
    /// </summary>
    public static int CompletionStart(int[] labels)
    {
        var runs = new List<int>();   // starts of labelled runs
        for (int t = 0; t < labels.Length; t++)
            if (labels[t] != TokenizedExample.IgnoreIndex && (t == 0 || labels[t - 1] == TokenizedExample.IgnoreIndex)) runs.Add(t);
        if (runs.Count == 0) return -1;
        bool loneEos = runs[^1] == labels.Length - 1 && runs.Count > 1;
        return loneEos ? runs[^2] : runs[^1];
    }

    /// <summary>The template `data.template` names: <c>chat</c> = the tokenizer's chat template, else a built-in or format string.</summary>
    public static IPromptTemplate Template(string name, string tokenizerPath)
    {
        if (name.Equals("chat", StringComparison.OrdinalIgnoreCase))
        {
            try { return new ChatTemplatePrompt(ChatTemplateLoader.FromTokenizer(tokenizerPath), "chat"); }
            catch (ChatTemplateException e) { throw new InputException($"data.template: chat: {e.Message}"); }
        }
        try { return PromptTemplates.Get(name); }
        catch (ArgumentException e) { throw new InputException($"data.template: {e.Message}; or chat (the tokenizer's chat template)"); }
    }

    public static void WriteStats(string path, PreferenceStats stats) =>
        Checkpoints.AtomicFile.WriteAllText(path, JsonSerializer.Serialize(stats, new JsonSerializerOptions { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }));
}
