using System.Globalization;
using InstructTune.Data.Pipeline;

namespace InstructTune.Recipes;

/// <summary>
/// The data stats that <c>itune prepare</c> and <c>itune train</c> both print, from the one pipeline: per dataset read,
/// rejected (with reasons), flagged, duplicates, truncated, dropped (with reasons), kept and learned tokens; per stage
/// the examples, tokens and learned tokens drawn from each dataset.
/// </summary>
public static class DataReport
{
    /// <param name="maxSeqLen">data.max_seq_len, named in the truncation warning.</param>
    public static IEnumerable<string> Lines(PreparedData data, int maxSeqLen)
    {
        var inv = CultureInfo.InvariantCulture;
        foreach (var d in data.Datasets)
        {
            var s = d.Stats;
            yield return string.Create(inv, $"dataset {d.Name} (stage {d.Stage}{(d.PlainText ? ", plain text" : "")}{(s.CacheReused ? ", cache reused" : "")}): " +
                $"read {s.RecordsRead}, rejected {s.RecordsRejected}{Reasons(s.RejectedByReason)}, flagged {s.Flagged}, quality-rejected {s.QualityRejected}, " +
                $"duplicates {s.DuplicatesRemoved}, truncated {s.Truncated}, dropped {s.Dropped}{Reasons(s.DroppedByReason)}, kept {s.RecordsKept}, " +
                $"learned tokens {s.Tokens.Learned}");
            if (TruncationWarning(d.Name, s, maxSeqLen) is { } warning) yield return warning;
        }
        foreach (var st in data.StageReports)
        {
            var epochs = st.Epochs > 1 ? $" ({st.Epochs} epochs)" : "";
            yield return string.Create(inv, $"stage {st.Stage}: {st.Examples} examples{epochs}, {st.ByDataset.Values.Sum(x => x.Tokens)} tokens, {st.ByDataset.Values.Sum(x => x.LearnedTokens)} learned");
            foreach (var (name, share) in st.ByDataset)
                yield return string.Create(inv, $"  {name}: rate {share.Rate:F4}, {share.Examples} examples, {share.Tokens} tokens, {share.LearnedTokens} learned");
        }
    }

    /// <summary>
    /// "warning: dataset NAME: L of N examples (P %) lost their whole response to truncation …" when more than 10 %
    /// of a dataset's tokenized examples (kept + dropped after tokenization) were dropped because truncation at
    /// data.max_seq_len left them no learned token; null otherwise.
    /// </summary>
    public static string? TruncationWarning(string dataset, PrepareStats s, int maxSeqLen)
    {
        int lost = s.DroppedByReason.GetValueOrDefault(PreparePipeline.ResponseTruncatedAway), n = s.RecordsKept + s.Dropped;
        if (lost * 10 <= n) return null;
        return string.Create(CultureInfo.InvariantCulture,
            $"warning: dataset {dataset}: {lost} of {n} examples ({100.0 * lost / n:F0} %) lost their whole response to truncation at data.max_seq_len={maxSeqLen} and were dropped; raise data.max_seq_len or shorten the prompts");
    }

    private static string Reasons(IReadOnlyDictionary<string, int> byReason) =>
        byReason.Count == 0 ? "" : " (" + string.Join(", ", byReason.Select(kv => $"{kv.Key} {kv.Value}")) + ")";
}
