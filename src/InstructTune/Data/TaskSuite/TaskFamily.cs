namespace InstructTune.Data.TaskSuite;

/// <summary>What a family reads and writes, so conditionals pair families of one input kind and compositions
/// chain a family whose output kind is the next one's input kind.</summary>
public enum ValueKind { Word, Sentence, Number, NumberList, NumberPair, ItemList, KeyValues, Label }

/// <summary>
/// One verifiable task family: imperative phrasings of its instruction (index ≥ <see cref="TaskFamilies.TrainedPhrasings"/>
/// are held out), an input generator and the exact answer. Answers are short and deterministic, so exact match
/// scores them.
/// </summary>
public sealed record TaskFamily(
    string Name,
    string Cluster,
    ValueKind In,
    ValueKind Out,
    string[] Phrasings,
    Func<Random, string> Generate,
    Func<string, string> Answer,
    bool HeldOut = false)
{
    /// <summary>A phrasing as a clause to embed in a longer instruction ("Reverse the word." → "reverse the word").</summary>
    public string Clause(int phrasing)
    {
        var p = Phrasings[phrasing].TrimEnd('.', ' ');
        return char.ToLowerInvariant(p[0]) + p[1..];
    }
}
