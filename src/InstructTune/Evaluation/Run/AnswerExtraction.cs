using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.Run;

/// <summary>
/// Final-answer extraction for math and multiple-choice data, with the official rules:
/// <list type="bullet">
/// <item>GSM8K official (openai/grade-school-math <c>extract_answer</c>): the first <c>#### (-?[0-9.,]+)</c>, stripped,
/// commas removed; no match is <c>[invalid]</c>; correct when equal to the reference's extraction.</item>
/// <item>lm-evaluation-harness gsm8k <c>strict-match</c>: the same regex, first match; <c>flexible-extract</c>: the last
/// match of <c>(-?[$0-9.,]{2,})|(-?[0-9]+)</c>. Both then compare with the harness's <c>exact_match</c> settings of
/// the gsm8k task: <c>ignore_case</c>, and the <c>regexes_to_ignore</c> <c>,</c> <c>\$</c> <c>(?s).*#### </c>
/// <c>\.$</c> applied to prediction and reference alike.</item>
/// <item>Multiple choice: the option letter the output commits to (see <see cref="ChoiceLetter"/>).</item>
/// </list>
/// </summary>
public static class AnswerExtraction
{
    public const string Invalid = "[invalid]";

    private static readonly Regex HashAnswer = new(@"#### (\-?[0-9\.\,]+)", RegexOptions.CultureInvariant);
    private static readonly Regex LastNumber = new(@"(-?[$0-9.,]{2,})|(-?[0-9]+)", RegexOptions.CultureInvariant);
    private static readonly Regex[] Ignore =
    [
        new(",", RegexOptions.CultureInvariant), new(@"\$", RegexOptions.CultureInvariant),
        new(@"(?s).*#### ", RegexOptions.CultureInvariant), new(@"\.$", RegexOptions.CultureInvariant),
    ];

    /// <summary>openai/grade-school-math <c>extract_answer</c>.</summary>
    public static string Gsm8kOfficial(string completion)
    {
        var m = HashAnswer.Match(completion);
        return m.Success ? m.Groups[1].Value.Trim().Replace(",", "") : Invalid;
    }

    /// <summary>lm-eval <c>strict-match</c> filter (first <c>#### n</c>, stripped; <c>[invalid]</c> when none).</summary>
    public static string Gsm8kStrict(string completion)
    {
        var m = HashAnswer.Match(completion);
        return m.Success ? m.Groups[1].Value.Trim() : Invalid;
    }

    /// <summary>lm-eval <c>flexible-extract</c> filter: the last number-like match (first non-empty group), stripped.</summary>
    public static string Gsm8kFlexible(string completion)
    {
        var matches = LastNumber.Matches(completion);
        if (matches.Count == 0) return Invalid;
        var m = matches[^1];
        return (m.Groups[1].Success && m.Groups[1].Length > 0 ? m.Groups[1].Value : m.Groups[2].Value).Trim();
    }

    /// <summary>The harness's exact_match normalisation for gsm8k (regexes removed in order, then lowercase).</summary>
    public static string HarnessNormalize(string s)
    {
        foreach (var r in Ignore) s = r.Replace(s, "");
        return s.ToLowerInvariant();
    }

    /// <summary>True when the reference carries a GSM8K final answer line.</summary>
    public static bool HasGsm8kAnswer(string reference) => HashAnswer.IsMatch(reference);

    // An explicit statement ("answer is (B)", "Answer: B"), else a letter standing alone or bracketed at the start
    // of a line, else the first standalone capital letter among the options.
    private static readonly Regex AnswerIs = new(@"answer\s*(?:is|:)?\s*:?\s*\(?([A-Z])\)?(?![A-Za-z])", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase);
    private static readonly Regex LineStart = new(@"(?m)^\s*\(?([A-Z])[\)\.:](?=\s|$)|^\s*\(?([A-Z])\)?\s*$", RegexOptions.CultureInvariant);
    private static readonly Regex Standalone = new(@"(?<![A-Za-z])\(?([A-Z])\)?(?![A-Za-z'])", RegexOptions.CultureInvariant);

    /// <summary>
    /// The option letter (A, B, …; at most <paramref name="options"/> of them) an output commits to, or null:
    /// first "answer is X" / "Answer: (X)", then a letter alone or as "X." / "(X)" at the start of a line, then the
    /// first standalone capital within range. When no letter is found, an output whose text equals one option
    /// (SQuAD-normalised) picks that option.
    /// </summary>
    public static char? ChoiceLetter(string output, IReadOnlyList<string> optionTexts)
    {
        int options = Math.Max(optionTexts.Count, 1);
        bool InRange(char c) => c >= 'A' && c < 'A' + options;
        foreach (Match m in AnswerIs.Matches(output))
        {
            char c = char.ToUpperInvariant(m.Groups[1].Value[0]);
            if (InRange(c)) return c;
        }
        foreach (Match m in LineStart.Matches(output))
        {
            var g = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value;
            if (g.Length == 1 && InRange(g[0])) return g[0];
        }
        foreach (Match m in Standalone.Matches(output))
            if (InRange(m.Groups[1].Value[0])) return m.Groups[1].Value[0];
        var norm = Metrics.SquadMetrics.Normalize(output);
        for (int i = 0; i < optionTexts.Count; i++)
            if (norm.Length > 0 && norm == Metrics.SquadMetrics.Normalize(optionTexts[i])) return (char)('A' + i);
        return null;
    }
}
