namespace InstructTune.Data.Records;

/// <summary>Why a record was refused; the names are the keys of <c>rejected_by_reason</c> in stats.json.</summary>
public static class RejectReason
{
    public const string BadJson = "bad_json";
    public const string Truncated = "truncated_file";
    public const string InvalidUtf8 = "invalid_utf8";
    public const string MissingField = "missing_field";
    public const string WrongType = "wrong_type";
    public const string EmptyOutput = "empty_output";
    public const string EmptyInstruction = "empty_instruction";
    public const string NoAssistantTurn = "no_assistant_turn";
    public const string UnknownRole = "unknown_role";
    public const string NoFinalAnswer = "no_final_answer";
    public const string BadCsvRow = "bad_csv_row";
}

/// <summary>A record the loader could not accept, located by file, line (or record index) and field.</summary>
public sealed record RecordRejection(RecordSource Source, string? Field, string Reason, string Message, string? Raw = null)
{
    public override string ToString() =>
        $"{Source}: {(Field != null ? $"field '{Field}': " : "")}{Reason}: {Message}";
}

/// <summary>Thrown under the <c>fail</c> policy (and for errors that are not about one record): says where and why.</summary>
public sealed class DataFormatException : InstructTune.Common.InputException
{
    public RecordRejection? Rejection { get; }

    public DataFormatException(RecordRejection rejection) : base(rejection.ToString()) => Rejection = rejection;

    public DataFormatException(string message) : base(message) { }
}
