using System.Text.Json;
using InstructTune.Data.Records;

namespace InstructTune.Data.Quality;

/// <summary>
/// A score for a record, higher is better unless the scorer says otherwise; model-based scorers (embedding
/// similarity of instruction and response, perplexity under a reference model) plug in here once models exist.
/// </summary>
public interface IQualityScorer
{
    string Name { get; }
    double Score(InstructionRecord record);
}

/// <summary>What a rule decides for one record.</summary>
public enum Verdict { Keep, Review, Reject }

/// <summary>A named check: given the record and its scores (by scorer name), keep, flag for review, or reject.</summary>
public sealed record QualityRule(string Name, Func<InstructionRecord, IReadOnlyDictionary<string, double>, Verdict> Decide)
{
    /// <summary><c>if score &lt; threshold: action</c> (review by default).</summary>
    public static QualityRule Below(string scorer, double threshold, Verdict action = Verdict.Review) =>
        new($"{scorer}<{threshold}", (_, s) => s.TryGetValue(scorer, out var v) && v < threshold ? action : Verdict.Keep);

    /// <summary><c>if score &gt; threshold: action</c> (reject by default), e.g. a contradiction score.</summary>
    public static QualityRule Above(string scorer, double threshold, Verdict action = Verdict.Reject) =>
        new($"{scorer}>{threshold}", (_, s) => s.TryGetValue(scorer, out var v) && v > threshold ? action : Verdict.Keep);

    /// <summary>Reject records whose complexity level exceeds the maximum.</summary>
    public static QualityRule MaxComplexity(int max) =>
        new($"complexity>{max}", (r, _) => r.Complexity > max ? Verdict.Reject : Verdict.Keep);

    /// <summary>Length filter on the response in characters.</summary>
    public static QualityRule OutputLength(int min, int max) =>
        new("output_length", (r, _) => Output(r).Length is var n && (n < min || n > max) ? Verdict.Reject : Verdict.Keep);

    /// <summary>Ratio filter: response characters per prompt character outside [min, max] is rejected.</summary>
    public static QualityRule LengthRatio(double min, double max) =>
        new("length_ratio", (r, _) =>
        {
            double prompt = Math.Max(1, Prompt(r).Length), ratio = Output(r).Length / prompt;
            return ratio < min || ratio > max ? Verdict.Reject : Verdict.Keep;
        });

    /// <summary>When the instruction asks for JSON, the response must parse as JSON (a ```json fence is allowed).</summary>
    public static QualityRule JsonWhenAsked() =>
        new("json_format", (r, _) => AsksForJson(r) && !ParsesAsJson(Output(r)) ? Verdict.Reject : Verdict.Keep);

    public static bool AsksForJson(InstructionRecord r) =>
        System.Text.RegularExpressions.Regex.IsMatch(Prompt(r), @"\bJSON\b", System.Text.RegularExpressions.RegexOptions.IgnoreCase);

    public static bool ParsesAsJson(string text)
    {
        var t = text.Trim();
        if (t.StartsWith("```"))
        {
            var firstNewline = t.IndexOf('\n');
            var close = t.LastIndexOf("```", StringComparison.Ordinal);
            if (firstNewline < 0 || close <= firstNewline) return false;
            t = t[(firstNewline + 1)..close].Trim();
        }
        if (t.Length == 0 || (t[0] != '{' && t[0] != '[')) return false;
        try { using var _ = JsonDocument.Parse(t); return true; }
        catch (JsonException) { return false; }
    }

    internal static string Prompt(InstructionRecord r) =>
        r.IsChat ? string.Join("\n", r.Messages!.Where(m => m.Role != "assistant").Select(m => m.Content)) : r.Instruction + "\n" + r.Input;

    internal static string Output(InstructionRecord r) =>
        r.IsChat ? string.Join("\n", r.Messages!.Where(m => m.Role == "assistant").Select(m => m.Content)) : r.Output;
}

/// <summary>Share of response words that also occur in the prompt — a cheap relevance proxy (0..1).</summary>
public sealed class LexicalOverlapScorer : IQualityScorer
{
    public string Name => "lexical_overlap";

    public double Score(InstructionRecord r)
    {
        var prompt = TextNormalizer.Words(QualityRule.Prompt(r)).ToHashSet();
        var output = TextNormalizer.Words(QualityRule.Output(r));
        return output.Length == 0 ? 0 : (double)output.Count(prompt.Contains) / output.Length;
    }
}

/// <summary>Share of the response's word 3-grams that repeat an earlier 3-gram (0 none … → 1 all); degenerate loops score high.</summary>
public sealed class RepetitionScorer : IQualityScorer
{
    public const string ScorerName = "repetition";
    public string Name => ScorerName;

    public double Score(InstructionRecord r)
    {
        var w = TextNormalizer.Words(QualityRule.Output(r));
        if (w.Length < 3) return 0;
        var seen = new HashSet<(string, string, string)>();
        int repeated = 0;
        for (int i = 0; i + 2 < w.Length; i++) if (!seen.Add((w[i], w[i + 1], w[i + 2]))) repeated++;
        return (double)repeated / (w.Length - 2);
    }
}

/// <summary>Share of the response's letters that are ASCII (1 for English text; a cheap language check, 1 when it has no letters).</summary>
public sealed class AsciiLetterScorer : IQualityScorer
{
    public const string ScorerName = "ascii_letters";
    public string Name => ScorerName;

    public double Score(InstructionRecord r)
    {
        int letters = 0, ascii = 0;
        foreach (var c in QualityRule.Output(r))
            if (char.IsLetter(c)) { letters++; if (c < 128) ascii++; }
        return letters == 0 ? 1 : (double)ascii / letters;
    }
}
