using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.Robustness;

/// <summary>
/// Makes rephrasings of an instruction that keep its meaning: lexical substitution from a small table of
/// instruction-verb and modifier synonyms (write→compose, list→enumerate, explain→describe, short→brief, …) and
/// syntactic rewrites (polite request, question form, constraint clause moved to the front, "Your task: …").
/// Deterministic for a seed; the original comes first and duplicates are removed.
/// </summary>
public static partial class ParaphraseGenerator
{
    private static readonly (string From, string To)[] Synonyms =
    [
        ("write", "compose"), ("list", "enumerate"), ("explain", "describe"), ("summarize", "sum up"),
        ("summarise", "sum up"), ("give", "provide"), ("short", "brief"), ("describe", "outline"),
        ("create", "produce"), ("make", "create"), ("tell", "inform"), ("translate", "render"),
        ("answer", "respond to"), ("use", "employ"), ("simple", "plain"), ("detailed", "thorough"),
        ("find", "identify"), ("show", "demonstrate"), ("suggest", "propose"), ("choose", "select"),
    ];

    [GeneratedRegex(@"^(?<lead>[^,]*?)\s*,?\s*(?<clause>\b(?:in|using|with)\s+(?:at most|no more than|under|fewer than|less than|exactly|at least)?\s*\d+\s+\w+)\s*[.!]?$", RegexOptions.IgnoreCase)]
    private static partial Regex TrailingConstraint();

    public static IReadOnlyList<string> Generate(string instruction, int count, int seed = 0)
    {
        var rng = new Random(seed);
        var core = instruction.Trim();
        var candidates = new List<string> { core, Substitute(core, rng), Polite(core), Question(core), Fronted(core), Framed(core) };
        // Combinations widen the pool when more variants are asked for than single rewrites give.
        candidates.Add(Question(Substitute(core, rng)));
        candidates.Add(Fronted(Substitute(core, rng)));
        candidates.Add(Polite(Substitute(core, rng)));
        var unique = candidates.Where(c => c.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        var head = unique[0];
        var rest = unique.Skip(1).OrderBy(_ => rng.Next()).ToList();
        return new[] { head }.Concat(rest).Take(Math.Max(count, 1)).ToList();
    }

    public static string Substitute(string s, Random rng)
    {
        var options = Synonyms.Where(p => Regex.IsMatch(s, $@"\b{p.From}\b", RegexOptions.IgnoreCase)).ToList();
        if (options.Count == 0) return s;
        var (from, to) = options[rng.Next(options.Count)];
        return Regex.Replace(s, $@"\b{from}\b", m => MatchCase(m.Value, to), RegexOptions.IgnoreCase);
    }

    public static string Polite(string s) => s.StartsWith("Please", StringComparison.OrdinalIgnoreCase) ? s : "Please " + LowerFirst(s);

    public static string Question(string s)
    {
        var body = s.TrimEnd('.', '!', ' ');
        return body.EndsWith('?') ? body : $"Could you {LowerFirst(body)}?";
    }

    public static string Fronted(string s)
    {
        var m = TrailingConstraint().Match(s.Trim());
        if (!m.Success || m.Groups["lead"].Value.Length == 0) return s;
        var clause = m.Groups["clause"].Value;
        return $"{char.ToUpperInvariant(clause[0])}{clause[1..]}, {LowerFirst(m.Groups["lead"].Value.TrimEnd(','))}.";
    }

    public static string Framed(string s) => $"Your task: {LowerFirst(s)}";

    private static string LowerFirst(string s) =>
        s.Length > 1 && char.IsUpper(s[0]) && !char.IsUpper(s[1]) ? char.ToLowerInvariant(s[0]) + s[1..] : s;

    private static string MatchCase(string original, string replacement) =>
        char.IsUpper(original[0]) ? char.ToUpperInvariant(replacement[0]) + replacement[1..] : replacement;
}
