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
    public static IEnumerable<string> Lines(PreparedData data)
    {
        var inv = CultureInfo.InvariantCulture;
        foreach (var d in data.Datasets)
        {
            var s = d.Stats;
            yield return string.Create(inv, $"dataset {d.Name} (stage {d.Stage}{(d.PlainText ? ", plain text" : "")}{(s.CacheReused ? ", cache reused" : "")}): " +
                $"read {s.RecordsRead}, rejected {s.RecordsRejected}{Reasons(s.RejectedByReason)}, flagged {s.Flagged}, quality-rejected {s.QualityRejected}, " +
                $"duplicates {s.DuplicatesRemoved}, truncated {s.Truncated}, dropped {s.Dropped}{Reasons(s.DroppedByReason)}, kept {s.RecordsKept}, " +
                $"learned tokens {s.Tokens.Learned}");
        }
        foreach (var st in data.StageReports)
        {
            var epochs = st.Epochs > 1 ? $" ({st.Epochs} epochs)" : "";
            yield return string.Create(inv, $"stage {st.Stage}: {st.Examples} examples{epochs}, {st.ByDataset.Values.Sum(x => x.Tokens)} tokens, {st.ByDataset.Values.Sum(x => x.LearnedTokens)} learned");
            foreach (var (name, share) in st.ByDataset)
                yield return string.Create(inv, $"  {name}: rate {share.Rate:F4}, {share.Examples} examples, {share.Tokens} tokens, {share.LearnedTokens} learned");
        }
    }

    private static string Reasons(IReadOnlyDictionary<string, int> byReason) =>
        byReason.Count == 0 ? "" : " (" + string.Join(", ", byReason.Select(kv => $"{kv.Key} {kv.Value}")) + ")";
}
