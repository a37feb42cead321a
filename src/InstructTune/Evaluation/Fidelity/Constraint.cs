namespace InstructTune.Evaluation.Fidelity;

/// <summary>The kinds of checkable element an instruction can carry.</summary>
public enum ConstraintKind
{
    MaxWords, MinWords, ExactWords, MaxSentences, MinSentences, ExactSentences, ItemCount, ParagraphCount,
    RequiredWord, ForbiddenWord, Json, BulletList, NumberedList, AllCaps, Lowercase, StartsWith, EndsWith,
    NamedEntity, OrderedSteps,
}

/// <summary>
/// One checkable element extracted from an instruction: a kind, a number (counts and limits), words (required,
/// forbidden, entities, step key terms in order) and the instruction text it came from (for the report).
/// </summary>
public sealed record Constraint(ConstraintKind Kind, int? Number = null, IReadOnlyList<string>? Words = null, string Source = "")
{
    public override string ToString() => Kind + (Number is { } n ? $"={n}" : "") + (Words is { Count: > 0 } w ? $"[{string.Join(", ", w)}]" : "");
}

/// <summary>Whether an output keeps one constraint, with what was measured.</summary>
public sealed record ConstraintResult(Constraint Constraint, bool Kept, string Detail);
