// The Self-Instruct filters and parsers (Wang et al. 2023, "Self-Instruct: Aligning Language Models with
// Self-Generated Instructions", §2.2–2.3; rules as in the authors' released code, yizhongw/self-instruct:
// bootstrap_instructions.py `post_process_gpt3_response` and prepare_for_finetuning.py `parse_instances_*`,
// `filter_invalid_instances`, `filter_duplicate_instances`). Pure functions: text in, decisions out.
using System.Text.RegularExpressions;
using InstructTune.Evaluation.Metrics;

namespace InstructTune.Data.Synth;

/// <summary>One generated instance of a task.</summary>
public sealed record SynthInstance(string Input, string Output);

public static partial class SelfInstructRules
{
    /// <summary>The paper's keywords (language models cannot act on them): matched as whole words, any case.</summary>
    public static readonly IReadOnlyList<string> DefaultBlockedKeywords =
        ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw", "plot", "go to"];

    /// <summary>Python's string.punctuation.</summary>
    private const string AsciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    [GeneratedRegex(@"\n\d+\s?\. ")]
    private static partial Regex ListMarker();
    [GeneratedRegex(@"^\s*\d+\s?\.\s")]
    private static partial Regex LeadingMarker();
    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();

    /// <summary>
    /// Splits the endpoint's continuation of the numbered task list into candidate instructions. The prompt ends
    /// with "N." so the text continues task N; a chat model may repeat "N. " itself, which is accepted too. Pieces
    /// are whitespace-collapsed and their first letter capitalised (the released code also lower-cases the rest
    /// with Python's str.capitalize; we keep the casing — no filter below depends on it). When the answer was cut
    /// at max_tokens the released code drops the whole answer; <paramref name="dropAllWhenTruncated"/> = false keeps
    /// it as it is, unfinished last piece included (small local models rarely stop on their own).
    /// </summary>
    public static List<string> SplitInstructions(string text, bool truncated, bool dropAllWhenTruncated = true)
    {
        if (truncated && dropAllWhenTruncated) return [];
        var body = LeadingMarker().IsMatch(text) ? "\n" + text.TrimStart() : "\n0. " + text;
        var pieces = ListMarker().Split(body).Select(p => Spaces().Replace(p, " ").Trim()).ToList();
        return pieces.Where(p => p.Length > 0).Select(p => char.ToUpperInvariant(p[0]) + p[1..]).ToList();
    }

    /// <summary>The paper's per-instruction rules, in the released code's order; null = passes. Reasons:
    /// <c>length</c> (≤ 3 or &gt; 150 words), <c>keyword</c>, <c>write_a_program</c>, <c>punctuation_start</c>,
    /// <c>non_ascii_start</c>.</summary>
    public static string? Reject(string instruction, IReadOnlyList<string> blockedKeywords)
    {
        int words = instruction.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
        if (words <= 3 || words > 150) return "length";
        foreach (var k in blockedKeywords)
            if (Regex.IsMatch(instruction, $@"\b({Regex.Escape(k)})\b", RegexOptions.IgnoreCase)) return "keyword";
        // The released code tests "Write a program" after str.capitalize(), i.e. case-insensitively.
        if (instruction.StartsWith("Write a program", StringComparison.OrdinalIgnoreCase)) return "write_a_program";
        char c = instruction[0];
        if (AsciiPunctuation.Contains(c)) return "punctuation_start";
        if (c >= 128) return "non_ascii_start";
        return null;
    }

    /// <summary>rouge_score's tokens (lower-cased alphanumeric runs, no stemming), as the released code scores with.</summary>
    public static string[] RougeTokens(string text) => RougeTokenizer.Tokenize(text, false).ToArray();

    /// <summary>Highest ROUGE-L F-measure of <paramref name="candidate"/> against the pool, and the index it came from
    /// (-1 for an empty pool).</summary>
    public static (double Max, int Index) MaxRougeL(string[] candidate, IReadOnlyList<string[]> pool)
    {
        double best = 0; int at = -1;
        for (int i = 0; i < pool.Count; i++)
        {
            double f = Rouge.Lcs(pool[i], candidate).FMeasure;
            if (f > best || at < 0) { best = f; at = i; }
        }
        return (best, at);
    }

    [GeneratedRegex(@"Output\s*\d*\s*:")]
    private static partial Regex OutputMarker();
    [GeneratedRegex(@"Input\s*\d*\s*:")]
    private static partial Regex InputMarker();
    [GeneratedRegex(@"^Input\s*\d*\s*:")]
    private static partial Regex InputPrefix();
    [GeneratedRegex(@"Example\s?\d*\.?")]
    private static partial Regex ExampleMarker();

    private static (string Input, string Output) InputOutput(string text)
    {
        string input, output;
        if (OutputMarker().IsMatch(text))
        {
            var parts = OutputMarker().Split(text);
            input = parts[0].Trim();
            output = parts[1].Trim();
        }
        else { input = ""; output = text.Trim(); }
        if (InputMarker().IsMatch(output)) output = InputMarker().Split(output)[0].Trim();
        input = InputPrefix().Replace(input, "").Trim();
        return (input, output);
    }

    /// <summary>
    /// Instances of a non-classification task from an input-first answer: "Example k" blocks, each "Input: … Output: …"
    /// (or a single Input/Output pair). Without either marker the released code keeps nothing; <paramref name="lenient"/>
    /// takes the whole answer as the output of one input-less instance instead (chat models often answer directly).
    /// </summary>
    public static List<SynthInstance> ParseInputFirst(string text, bool truncated, bool lenient = false)
    {
        var list = new List<SynthInstance>();
        text = text.Trim();
        if (ExampleMarker().IsMatch(text))
            foreach (var block in ExampleMarker().Split(text).Select(b => b.Trim()).Where(b => b.Length > 0))
            {
                var (i, o) = InputOutput(block);
                list.Add(new SynthInstance(i.Trim(), o.Trim()));
            }
        else if (OutputMarker().IsMatch(text))
        {
            var (i, o) = InputOutput(text);
            list.Add(new SynthInstance(i.Trim(), o.Trim()));
        }
        else if (lenient && text.Length > 0) list.Add(new SynthInstance("", text));
        else return [];
        if (truncated && list.Count > 0) list.RemoveAt(list.Count - 1);
        return Clean(list);
    }

    /// <summary>Instances of a classification task from an output-first answer: blocks after "Class label:", the
    /// label on the first line and the input after it.</summary>
    public static List<SynthInstance> ParseOutputFirst(string text, bool truncated)
    {
        if (!text.Contains("Class label:", StringComparison.Ordinal)) return [];
        var list = new List<SynthInstance>();
        foreach (var block in text.Split("Class label:").Skip(1))
        {
            var fields = block.Trim().Split('\n', 2);
            var label = fields[0].Trim();
            var input = fields.Length == 2 ? fields[1].Trim() : "";
            list.Add(new SynthInstance(InputPrefix().Replace(input, "").Trim(), label));
        }
        if (truncated && list.Count > 0) list.RemoveAt(list.Count - 1);
        return Clean(list);
    }

    // filter_invalid_instances, then filter_duplicate_instances (order kept here: first occurrence wins).
    private static List<SynthInstance> Clean(List<SynthInstance> list)
    {
        var valid = list.Where(x => x.Input != x.Output && x.Output.Length > 0
                                    && !x.Input.TrimEnd().EndsWith(':') && !x.Output.TrimEnd().EndsWith(':')).ToList();
        // Same non-empty input with different outputs: the task is ambiguous, nothing of it is kept.
        for (int i = 1; i < valid.Count; i++)
            for (int j = 0; j < i; j++)
                if (valid[i].Input.Length > 0 && valid[i].Input == valid[j].Input && valid[i].Output != valid[j].Output) return [];
        return valid.Distinct().ToList();
    }

    /// <summary>The endpoint's answer to "is this a classification task?": yes when its first word is yes.</summary>
    public static bool IsYes(string answer)
    {
        var first = answer.TrimStart().Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries).FirstOrDefault() ?? "";
        return first.TrimEnd('.', ',', '!', ':', ';').Equals("yes", StringComparison.OrdinalIgnoreCase);
    }
}
