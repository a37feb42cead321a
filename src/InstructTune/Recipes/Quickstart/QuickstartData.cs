using InstructTune.Data.Records;
using InstructTune.Data.TaskSuite;

namespace InstructTune.Recipes.Quickstart;

/// <summary>
/// The quickstart's data, all derived from the built-in task suite: the learnable subset of families, the plain
/// pre-training text (each train example's input and answer stated as a sentence, never in instruction form), and
/// the evaluation splits.
/// </summary>
public static class QuickstartData
{
    /// <summary>
    /// Families a few-minute model can learn: answers are short and follow from the input by copying or by facts
    /// over the suite's closed word lists (which the pre-training sentences state). Arithmetic, sorting, reversal and
    /// multi-line formats are left to bigger runs; successor was tried and left out (100 number facts seen about
    /// 1.5 times each in pre-training: 5/20 held-out examples right after tuning).
    /// </summary>
    public static IReadOnlyList<string> Families { get; } =
        ["uppercase", "lowercase", "first_letter", "double_word", "even_odd", "animal_or_fruit", "first_word"];

    /// <summary>The evaluated splits, in report order.</summary>
    public static IReadOnlyList<string> EvalSplits { get; } = [SuiteSplit.HeldOutExamples, SuiteSplit.HeldOutPhrasings, SuiteSplit.HeldOutCompositions];

    /// <summary>The suite restricted to simple tasks and two-step compositions of <see cref="Families"/> (conditionals left out).</summary>
    public static List<SuiteExample> Subset(IEnumerable<SuiteExample> suite) =>
        suite.Where(s => s.Record.Complexity != 1 && FamiliesOf(s.Record.Task).All(Families.Contains)).ToList();

    /// <summary>"uppercase" → [uppercase]; "uppercase_then_first_letter" → [uppercase, first_letter].</summary>
    public static string[] FamiliesOf(string task) => task.Split("_then_");

    /// <summary>Plain pre-training text: one sentence per simple train example (compositions are not stated).</summary>
    public static List<InstructionRecord> PretrainText(IEnumerable<SuiteExample> subset) =>
        subset.Where(s => s.Split == SuiteSplit.Train && s.Record.Complexity == 0)
              .Select(s => InstructionRecord.PlainText(Sentence(s.Record.Task, s.Record.Input, s.Record.Output), s.Record.Task))
              .ToList();

    /// <summary>
    /// The record as tuned: " " + output. The space is a response character, so whichever token byte-level BPE puts
    /// it in (" WATER", or a lone space before a rare word) is learned and generated, never left in the prompt.
    /// </summary>
    public static InstructionRecord WithLeadingSpace(InstructionRecord r) => r with { Output = " " + r.Output };

    /// <summary>A fact as a sentence: the input and the answer, without any instruction phrasing.</summary>
    /// <summary>Every input and answer follows a space, as in the instruction prompt ("Input: x", "Answer: y"), so both
    /// see the same byte-level tokens.</summary>
    public static string Sentence(string family, string x, string y) => family switch
    {
        "uppercase" => $"the word {x} in capitals is {y}.",
        "lowercase" => $"the word {x} in small letters is {y}.",
        "first_letter" => $"the word {x} starts with {y}.",
        "double_word" => $"the word {x} two times is {y}.",
        "successor" => $"after {x} comes {y}.",
        "even_odd" => $"the number {x} is {y}.",
        "animal_or_fruit" => $"a {x} is a kind of {y}.",
        "first_word" => $"the line {x} opens with {y}.",
        _ => throw new ArgumentException($"no sentence form for family '{family}'"),
    };
}
