namespace InstructTune.Data.Loading;

/// <summary>Raised inside a mapper for one bad record; the loader turns it into a located rejection.</summary>
internal sealed class RecordProblem(string? field, string reason, string message) : Exception(message)
{
    public string? Field { get; } = field;
    public string Reason { get; } = reason;
}
