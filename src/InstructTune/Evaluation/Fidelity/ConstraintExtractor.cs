using System.Globalization;
using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.Fidelity;

/// <summary>
/// Finds the checkable elements of an English instruction with rules on its wording: length limits
/// ("in at most 50 words", "in fewer than 3 sentences"), counts ("list 5 reasons", "3 bullet points",
/// "in 2 paragraphs"), required and forbidden words ("include the keywords X and Y", "do not use the word Z"),
/// formats (JSON, bullet or numbered list, all capitals, lowercase, starts/ends with a phrase), named entities
/// (capitalised names not at a sentence start) and ordered steps ("first …, then …, finally …" or "1. … 2. …").
/// Rules, not a parser: what no rule recognises is simply not checked (the report shows what was extracted).
/// </summary>
public static partial class ConstraintExtractor
{
    private const RegexOptions I = RegexOptions.IgnoreCase | RegexOptions.CultureInvariant;
    private const string Num = @"(\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|fifty|hundred)";

    [GeneratedRegex(@"\b(at most|no more than|not more than|maximum of|up to|under|fewer than|less than|at least|minimum of|no less than|exactly|in|of|with|using)\s+" + Num + @"\s+(words?|sentences?)\b", I)]
    private static partial Regex LengthRx();
    // "5 reasons", "three short tips", or any noun right after a listing verb ("list 3 fruits", "name two rivers").
    [GeneratedRegex(@"\b(?:(?:list|name|give|provide|suggest|enumerate)\s+(?:me\s+)?" + Num + @"\s+(?!words?\b|sentences?\b|paragraphs?\b)\p{L}+|" + Num + @"\s+(?:(?:short|key|main|different|distinct|bullet(?:ed)?|numbered|separate)\s+)*(?:items|reasons|examples|ways|tips|ideas|points|steps|things|benefits|facts|questions|bullet points|names|options))\b", I)]
    private static partial Regex ItemsRx();
    [GeneratedRegex(@"\b" + Num + @"\s+paragraphs?\b", I)]
    private static partial Regex ParagraphsRx();
    [GeneratedRegex(@"\b(?:include|use|mention|contain|including|using)\s+(?:the\s+)?(?:key)?(?:words?|terms?|phrases?|keywords?)\s+(.+?)(?:[.;!?]|$)", I)]
    private static partial Regex RequiredRx();
    [GeneratedRegex(@"\b(?:do not|don't|never|without|avoid)\s+(?:use|using|mention|mentioning|include|including|say|saying)?\s*(?:the\s+)?(?:words?|terms?|phrases?|letters?)\s+(.+?)(?:[.;!?]|$)", I)]
    private static partial Regex ForbiddenRx();
    [GeneratedRegex(@"""([^""]+)""|'([^']+)'|“([^”]+)”|([\p{L}\p{N}\-]+)")]
    private static partial Regex WordListItem();
    [GeneratedRegex(@"\b(?:in|as|using|valid)\s+(?:a\s+)?json\b|\bjson\s+(?:format|object)\b", I)]
    private static partial Regex JsonRx();
    [GeneratedRegex(@"\bbullet(?:ed)?(?:\s+|-)(?:list|points?)\b|\bas bullets\b", I)]
    private static partial Regex BulletRx();
    [GeneratedRegex(@"\bnumbered\s+(?:list|steps|points)\b", I)]
    private static partial Regex NumberedRx();
    [GeneratedRegex(@"\b(?:all\s+capital\s+letters|all\s+caps|in\s+uppercase|all\s+uppercase)\b", I)]
    private static partial Regex CapsRx();
    [GeneratedRegex(@"\b(?:all\s+lowercase|in\s+lowercase|lowercase\s+letters\s+only|no\s+capital\s+letters)\b", I)]
    private static partial Regex LowerRx();
    [GeneratedRegex(@"\b(?:start|begin)s?\s+(?:your\s+(?:answer|response|reply)\s+)?with\s+(?:the\s+(?:word|phrase)\s+)?[""“']([^""”']+)[""”']", I)]
    private static partial Regex StartsRx();
    [GeneratedRegex(@"\bend(?:s)?\s+(?:your\s+(?:answer|response|reply)\s+)?with\s+(?:the\s+(?:word|phrase)\s+)?[""“']([^""”']+)[""”']", I)]
    private static partial Regex EndsRx();
    [GeneratedRegex(@"\b(?:first(?:ly)?|then|next|after that|afterwards|finally|lastly)\b[,:]?\s*", I)]
    private static partial Regex StepMarkerRx();
    [GeneratedRegex(@"(?m)^\s*\d+[.)]\s+(.+)$")]
    private static partial Regex NumberedLineRx();
    [GeneratedRegex(@"(?<![.!?:]\s)(?<!^)\b(\p{Lu}[\p{L}\-]+(?:\s+\p{Lu}[\p{L}\-]+)*)")]
    private static partial Regex CapitalisedRx();

    [GeneratedRegex(@"""[^""]*""|“[^”]*”")]
    private static partial Regex QuotedRx();

    private static readonly HashSet<string> NotEntities = new(StringComparer.OrdinalIgnoreCase)
    {
        "I", "JSON", "HTML", "SQL", "API", "AI", "OK", "English", "Please", "Make", "Use", "Do", "Write", "List",
        "The", "A", "An", "Your", "You", "Answer", "Response", "First", "Then", "Finally", "Next", "Step",
        // Languages and units name the form of the answer, not something to mention in it.
        "Spanish", "French", "German", "Italian", "Chinese", "Japanese", "Portuguese", "Russian", "Arabic", "Hindi",
        "Celsius", "Fahrenheit", "Kelvin", "Markdown", "Python", "Monday", "Tuesday", "Wednesday", "Thursday",
        "Friday", "Saturday", "Sunday",
    };

    public static IReadOnlyList<Constraint> Extract(string instruction)
    {
        var found = new List<Constraint>();
        foreach (Match m in LengthRx().Matches(instruction))
        {
            int n = ParseNumber(m.Groups[2].Value);
            bool words = m.Groups[3].Value.StartsWith("word", StringComparison.OrdinalIgnoreCase);
            var q = m.Groups[1].Value.ToLowerInvariant();
            var (kind, limit) = q switch
            {
                "at most" or "no more than" or "not more than" or "maximum of" or "up to" => (words ? ConstraintKind.MaxWords : ConstraintKind.MaxSentences, n),
                "under" or "fewer than" or "less than" => (words ? ConstraintKind.MaxWords : ConstraintKind.MaxSentences, n - 1),
                "at least" or "minimum of" or "no less than" => (words ? ConstraintKind.MinWords : ConstraintKind.MinSentences, n),
                _ => (words ? ConstraintKind.ExactWords : ConstraintKind.ExactSentences, n),
            };
            // "in 3 sentences" is exact; "in 50 words" reads as a limit in practice.
            if (kind == ConstraintKind.ExactWords && q != "exactly") kind = ConstraintKind.MaxWords;
            found.Add(new Constraint(kind, limit, Source: m.Value));
        }
        foreach (Match m in ItemsRx().Matches(instruction))
            found.Add(new Constraint(ConstraintKind.ItemCount, ParseNumber(m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value), Source: m.Value));
        foreach (Match m in ParagraphsRx().Matches(instruction))
            found.Add(new Constraint(ConstraintKind.ParagraphCount, ParseNumber(m.Groups[1].Value), Source: m.Value));

        var forbidden = ForbiddenRx().Matches(instruction).Cast<Match>().ToList();
        foreach (Match m in RequiredRx().Matches(instruction))
            if (!forbidden.Any(f => f.Index <= m.Index && m.Index < f.Index + f.Length))
                found.Add(new Constraint(ConstraintKind.RequiredWord, Words: WordList(m.Groups[1].Value), Source: m.Value));
        foreach (var m in forbidden)
            found.Add(new Constraint(ConstraintKind.ForbiddenWord, Words: WordList(m.Groups[1].Value), Source: m.Value));

        if (JsonRx().Match(instruction) is { Success: true } j) found.Add(new Constraint(ConstraintKind.Json, Source: j.Value));
        if (BulletRx().Match(instruction) is { Success: true } b) found.Add(new Constraint(ConstraintKind.BulletList, Source: b.Value));
        if (NumberedRx().Match(instruction) is { Success: true } nl) found.Add(new Constraint(ConstraintKind.NumberedList, Source: nl.Value));
        if (CapsRx().Match(instruction) is { Success: true } c) found.Add(new Constraint(ConstraintKind.AllCaps, Source: c.Value));
        if (LowerRx().Match(instruction) is { Success: true } l) found.Add(new Constraint(ConstraintKind.Lowercase, Source: l.Value));
        if (StartsRx().Match(instruction) is { Success: true } s)
            found.Add(new Constraint(ConstraintKind.StartsWith, Words: [s.Groups[1].Value], Source: s.Value));
        if (EndsRx().Match(instruction) is { Success: true } e)
            found.Add(new Constraint(ConstraintKind.EndsWith, Words: [e.Groups[1].Value], Source: e.Value));

        var entities = Entities(instruction, found);
        if (entities.Count > 0) found.Add(new Constraint(ConstraintKind.NamedEntity, Words: entities, Source: string.Join(", ", entities)));
        var steps = Steps(instruction);
        if (steps.Count >= 2) found.Add(new Constraint(ConstraintKind.OrderedSteps, Words: steps, Source: string.Join(" → ", steps)));
        return found;
    }

    private static int ParseNumber(string s) => s.ToLowerInvariant() switch
    {
        "one" => 1, "two" => 2, "three" => 3, "four" => 4, "five" => 5, "six" => 6, "seven" => 7, "eight" => 8,
        "nine" => 9, "ten" => 10, "eleven" => 11, "twelve" => 12, "fifteen" => 15, "twenty" => 20, "thirty" => 30,
        "fifty" => 50, "hundred" => 100, _ => int.Parse(s, CultureInfo.InvariantCulture),
    };

    // "X, Y and Z" / "\"x y\" or 'z'" → [X, Y, Z]; connectives dropped.
    private static List<string> WordList(string text) =>
        WordListItem().Matches(text).Select(m => m.Groups.Cast<Group>().Skip(1).First(g => g.Success).Value.Trim())
            .Where(w => w.Length > 0 && w.ToLowerInvariant() is not ("and" or "or" or "nor" or "the" or "in" or "your" or "answer" or "response"))
            .ToList();

    // Names the output should mention: capitalised words not at a sentence start, outside quotes (literals to
    // copy) and outside questions ("What is the capital of France?" is answered without naming France).
    private static List<string> Entities(string instruction, List<Constraint> found)
    {
        var quoted = found.Where(c => c.Words != null).SelectMany(c => c.Words!).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var masked = QuotedRx().Replace(instruction, m => new string(' ', m.Length));
        masked = QuestionRx().Replace(masked, m => new string(' ', m.Length));
        return CapitalisedRx().Matches(masked).Select(m => m.Groups[1].Value)
            .Where(e => !NotEntities.Contains(e.Split(' ')[0]) && !quoted.Contains(e) && !e.All(char.IsUpper))
            .Distinct().ToList();
    }

    [GeneratedRegex(@"[^.!?\n]*\?")]
    private static partial Regex QuestionRx();
    [GeneratedRegex(@"[.!?;](?:\s|$)")]
    private static partial Regex ClauseEndRx();

    private static readonly HashSet<string> StepFiller = new(StringComparer.OrdinalIgnoreCase)
    {
        "then", "that", "this", "these", "those", "with", "your", "from", "into", "them", "their", "result", "step", "steps",
    };

    // Steps come from numbered lines, or from "first/then/next/finally" markers: each segment runs from its marker
    // to the next marker or the end of its sentence; when the first marker is not "first", the clause before it is
    // step one ("Add 4 and 5, then multiply …"). A step's key term is its most specific word: the longest word of
    // 4+ letters after the leading verb, else the verb itself — what an output carrying out the step would name.
    private static List<string> Steps(string instruction)
    {
        var numbered = NumberedLineRx().Matches(instruction).Select(m => m.Groups[1].Value).ToList();
        List<string> parts;
        if (numbered.Count >= 2) parts = numbered;
        else
        {
            var markers = StepMarkerRx().Matches(instruction);
            if (markers.Count < 2 && !(markers.Count == 1 && !IsFirst(markers[0].Value))) return [];
            parts = [];
            if (!IsFirst(markers[0].Value))
            {
                var before = instruction[..markers[0].Index];
                var sentences = ClauseEndRx().Split(before).Where(x => x.Any(char.IsLetter)).ToList();
                if (sentences.Count > 0) parts.Add(sentences[^1]);
            }
            for (int i = 0; i < markers.Count; i++)
            {
                int start = markers[i].Index + markers[i].Length;
                int end = i + 1 < markers.Count ? markers[i + 1].Index : instruction.Length;
                var segment = instruction[start..end];
                var stop = ClauseEndRx().Match(segment);
                parts.Add(stop.Success ? segment[..stop.Index] : segment);
            }
        }
        return parts.Select(KeyTerm).Where(w => w != null).Select(w => w!).ToList();
    }

    private static bool IsFirst(string marker) => marker.TrimStart().StartsWith("first", StringComparison.OrdinalIgnoreCase);

    private static string? KeyTerm(string step)
    {
        var words = Regex.Matches(step, @"\p{L}+").Select(m => m.Value.ToLowerInvariant()).Where(w => w != "and").ToList();
        if (words.Count == 0) return null;
        var rest = words.Skip(1).Where(w => w.Length >= 4 && !StepFiller.Contains(w)).ToList();
        return rest.Count > 0 ? rest.OrderByDescending(w => w.Length).First() : words[0].Length >= 3 ? words[0] : null;
    }
}
