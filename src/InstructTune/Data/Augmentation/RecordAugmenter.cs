using System.Text;
using InstructTune.Data.Loading;
using InstructTune.Data.Records;

namespace InstructTune.Data.Augmentation;

/// <summary>
/// Record-level augmentations: input↔output inversion, instruction paraphrase expansion, and few-shot prefixing
/// from Natural-Instructions positive examples. Each returns new records; the originals are untouched.
/// </summary>
public static class RecordAugmenter
{
    public const string DefaultInversionInstruction = "Write the instruction that the following response answers.";

    /// <summary>
    /// Answer → question generation: the response becomes the input, the instruction (with its input, if any)
    /// becomes the target. Task label gets the suffix ":inverted". Chats and plain text are not inverted (null).
    /// </summary>
    public static InstructionRecord? Invert(InstructionRecord r, string instruction = DefaultInversionInstruction)
    {
        if (r.IsChat || r.IsPlainText) return null;
        var target = r.Input.Length > 0 ? $"{r.Instruction}\nInput: {r.Input}" : r.Instruction;
        return r with { Instruction = instruction, Input = r.Output, Output = target, Task = r.Task + ":inverted" };
    }

    /// <summary>
    /// Paraphrase expansion: for a record whose instruction is one of a group of phrasings, emit the record once per
    /// other phrasing in that group (the original is not repeated). Groups are lists of interchangeable instructions.
    /// </summary>
    public static IEnumerable<InstructionRecord> Paraphrases(InstructionRecord r, IReadOnlyList<IReadOnlyList<string>> groups)
    {
        foreach (var group in groups)
        {
            if (!group.Contains(r.Instruction)) continue;
            foreach (var phrasing in group)
                if (phrasing != r.Instruction) yield return r with { Instruction = phrasing };
        }
    }

    /// <summary>
    /// Few-shot prefixing in the Super-NaturalInstructions style: definition, then k positive examples
    /// ("Positive Example i –\nInput: …\nOutput: …"), then "Now complete the following example –". The examples
    /// are part of the instruction span (masked); k is capped by the examples available. Picks without replacement.
    /// </summary>
    public static InstructionRecord FewShot(InstructionRecord r, IReadOnlyList<SniExample> positives, int k, Random rng)
    {
        if (r.IsChat || r.IsPlainText || k <= 0 || positives.Count == 0) return r;
        var picked = Enumerable.Range(0, positives.Count).OrderBy(_ => rng.Next()).Take(Math.Min(k, positives.Count)).Order().ToList();
        var sb = new StringBuilder();
        sb.Append("Definition: ").Append(r.Instruction).Append("\n\n");
        for (int i = 0; i < picked.Count; i++)
        {
            var ex = positives[picked[i]];
            sb.Append($"Positive Example {i + 1} -\nInput: {ex.Input}\nOutput: {ex.Output}\n\n");
        }
        sb.Append("Now complete the following example -");
        return r with { Instruction = sb.ToString() };
    }
}
