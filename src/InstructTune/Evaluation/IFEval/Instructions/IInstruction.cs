namespace InstructTune.Evaluation.IFEval.Instructions;

/// <summary>One verifiable instruction with its arguments bound (IFEval's <c>Instruction</c> after <c>build_description</c>).</summary>
public interface IInstruction
{
    /// <summary>Whether <paramref name="response"/> follows the instruction, by the official rule for its type.</summary>
    bool CheckFollowing(string response);
}

/// <summary>The two comparison relations IFEval's counted instructions accept.</summary>
internal enum Relation { LessThan, AtLeast }

internal static class RelationExtensions
{
    /// <summary>"less than": actual &lt; threshold; "at least": actual ≥ threshold.</summary>
    public static bool Holds(this Relation r, long actual, long threshold) =>
        r == Relation.LessThan ? actual < threshold : actual >= threshold;
}
