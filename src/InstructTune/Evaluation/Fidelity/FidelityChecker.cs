using System.Text.Json;
using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.Fidelity;

/// <summary>Checks an output against extracted constraints. Words are whitespace-separated tokens with letters or
/// digits; sentences end at . ! ? followed by space or end; list items are lines starting with -, *, • or "N." /
/// "N)"; paragraphs are separated by blank lines. Word matching is case-insensitive on word boundaries.</summary>
public static partial class FidelityChecker
{
    [GeneratedRegex(@"(?m)^\s*(?:[-*•]|\d+[.)])\s+")]
    private static partial Regex ListItemRx();
    [GeneratedRegex(@"(?m)^\s*[-*•]\s+")]
    private static partial Regex BulletRx();
    [GeneratedRegex(@"(?m)^\s*\d+[.)]\s+")]
    private static partial Regex NumberedRx();
    [GeneratedRegex(@"[.!?]+(?=\s|$)")]
    private static partial Regex SentenceEndRx();

    public static IReadOnlyList<ConstraintResult> Check(IEnumerable<Constraint> constraints, string output) =>
        constraints.Select(c => CheckOne(c, output)).ToList();

    public static int WordCount(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Count(w => w.Any(char.IsLetterOrDigit));
    public static int SentenceCount(string text) =>
        SentenceEndRx().Split(text.Trim()).Count(s => s.Any(char.IsLetterOrDigit));
    public static int ItemCount(string text) => ListItemRx().Matches(text).Count;
    public static int ParagraphCount(string text) => Regex.Split(text.Trim(), @"\n\s*\n").Count(p => p.Trim().Length > 0);

    private static ConstraintResult CheckOne(Constraint c, string output)
    {
        int n = c.Number ?? 0;
        var words = c.Words ?? [];
        return c.Kind switch
        {
            ConstraintKind.MaxWords => Count(c, WordCount(output), v => v <= n, "words"),
            ConstraintKind.MinWords => Count(c, WordCount(output), v => v >= n, "words"),
            ConstraintKind.ExactWords => Count(c, WordCount(output), v => v == n, "words"),
            ConstraintKind.MaxSentences => Count(c, SentenceCount(output), v => v <= n, "sentences"),
            ConstraintKind.MinSentences => Count(c, SentenceCount(output), v => v >= n, "sentences"),
            ConstraintKind.ExactSentences => Count(c, SentenceCount(output), v => v == n, "sentences"),
            ConstraintKind.ItemCount => Count(c, ItemCount(output), v => v == n, "list items"),
            ConstraintKind.ParagraphCount => Count(c, ParagraphCount(output), v => v == n, "paragraphs"),
            ConstraintKind.RequiredWord => Words(c, words.Where(w => !Contains(output, w)).ToList(), "missing"),
            ConstraintKind.ForbiddenWord => Words(c, words.Where(w => Contains(output, w)).ToList(), "used"),
            // A multi-word name counts as mentioned when any of its words is ("Alice" for "Alice Smith").
            ConstraintKind.NamedEntity => Words(c, words.Where(w => !w.Split(' ').Any(part => Contains(output, part))).ToList(), "missing"),
            ConstraintKind.Json => new(c, IsJson(output), IsJson(output) ? "parses as JSON" : "does not parse as JSON"),
            ConstraintKind.BulletList => new(c, BulletRx().IsMatch(output), $"{BulletRx().Matches(output).Count} bullet lines"),
            ConstraintKind.NumberedList => new(c, NumberedRx().IsMatch(output), $"{NumberedRx().Matches(output).Count} numbered lines"),
            ConstraintKind.AllCaps => new(c, output.Any(char.IsLetter) && output == output.ToUpperInvariant(), "case checked"),
            ConstraintKind.Lowercase => new(c, output.Any(char.IsLetter) && output == output.ToLowerInvariant(), "case checked"),
            ConstraintKind.StartsWith => new(c, output.TrimStart().StartsWith(words[0], StringComparison.OrdinalIgnoreCase), $"starts \"{Head(output.TrimStart())}\""),
            ConstraintKind.EndsWith => new(c, output.TrimEnd().EndsWith(words[0], StringComparison.OrdinalIgnoreCase), "end checked"),
            ConstraintKind.OrderedSteps => Ordered(c, output, words),
            _ => throw new NotSupportedException(c.Kind.ToString()),
        };
    }

    private static ConstraintResult Count(Constraint c, int measured, Func<int, bool> ok, string unit) =>
        new(c, ok(measured), $"{measured} {unit}");

    private static ConstraintResult Words(Constraint c, List<string> bad, string what) =>
        new(c, bad.Count == 0, bad.Count == 0 ? "all as required" : $"{what}: {string.Join(", ", bad)}");

    private static ConstraintResult Ordered(Constraint c, string output, IReadOnlyList<string> steps)
    {
        int last = -1;
        foreach (var s in steps)
        {
            var m = Regex.Match(output[(last + 1)..], @"\b" + Regex.Escape(s), RegexOptions.IgnoreCase);
            if (!m.Success) return new(c, false, $"step \"{s}\" missing or out of order");
            last = last + 1 + m.Index;
        }
        return new(c, true, "steps in order");
    }

    public static bool Contains(string text, string word) =>
        Regex.IsMatch(text, @"(?<![\p{L}\p{N}])" + Regex.Escape(word) + @"(?![\p{L}\p{N}])", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    private static bool IsJson(string output)
    {
        var t = output.Trim();
        if (t.StartsWith("```")) t = Regex.Replace(t, @"^```(?:json)?\s*|\s*```$", "");
        try { using var _ = JsonDocument.Parse(t); return true; }
        catch (JsonException) { return false; }
    }

    private static string Head(string s) => s.Length > 20 ? s[..20] + "…" : s;
}
