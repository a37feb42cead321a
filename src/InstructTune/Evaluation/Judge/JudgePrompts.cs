namespace InstructTune.Evaluation.Judge;

/// <summary>
/// The rubric prompts. IRS (instruction relevance score) asks for 1–10 on how well the response does what the
/// instruction asks — relevance and compliance, not style — with anchors for 1, 4, 7 and 10, and a JSON answer
/// so parsing rarely needs the fallbacks. Pairwise asks which of two responses follows the instruction better.
/// </summary>
public static class JudgePrompts
{
    public const string IrsSystem =
        "You are a strict evaluator of instruction following. Judge only how well the RESPONSE does what the " +
        "INSTRUCTION asks (relevance, constraints, completeness), not writing style.";

    public const string IrsRubric =
        "Score the response from 1 to 10:\n" +
        "10 = fully follows every part and constraint of the instruction;\n" +
        "7 = follows the main request, misses a minor constraint;\n" +
        "4 = partly relevant, misses major parts or constraints;\n" +
        "1 = irrelevant, refuses without reason, or contradicts the instruction.\n" +
        "Answer with JSON only: {\"score\": <1-10>, \"reason\": \"<one sentence>\"}";

    public static string Irs(string instruction, string response, string? reference) =>
        $"INSTRUCTION:\n{instruction}\n\n" + (reference is null ? "" : $"REFERENCE ANSWER (for guidance):\n{reference}\n\n") +
        $"RESPONSE:\n{response}\n\n{IrsRubric}";

    public const string PairwiseSystem =
        "You compare two responses to the same instruction and decide which follows the instruction better. " +
        "Ignore the order in which they are shown and their length unless the instruction asks about length.";

    public static string Pairwise(string instruction, string a, string b) =>
        $"INSTRUCTION:\n{instruction}\n\nRESPONSE A:\n{a}\n\nRESPONSE B:\n{b}\n\n" +
        "Which response follows the instruction better? Answer with JSON only: {\"winner\": \"A\" | \"B\" | \"tie\", \"reason\": \"<one sentence>\"}";
}
