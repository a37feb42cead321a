using InstructTune.Templates;

namespace InstructTune.Data.Records;

/// <summary>Where a record came from: the file, its 1-based line (0 when unknown) and its 0-based record index.</summary>
public readonly record struct RecordSource(string File, int Line, int Index)
{
    public override string ToString() => Line > 0 ? $"{File}:{Line} (record {Index})" : $"{File} (record {Index})";
}

/// <summary>
/// One training example as text, whatever format it was read from. Single-turn records carry
/// instruction/input/output; multi-turn chats carry <see cref="Messages"/> (and leave the three strings empty).
/// <see cref="Task"/> is the task or category label every example keeps through the pipeline (SNI task name,
/// Dolly category, task-suite family, or the dataset name); <see cref="Complexity"/> is 0 simple, 1 conditional,
/// 2 multi-step (−1 when unknown). <see cref="IsPlainText"/> marks pre-training text: it is learned on every token.
/// </summary>
public sealed record InstructionRecord(
    string Instruction,
    string Input,
    string Output,
    string Task,
    RecordSource Source = default,
    IReadOnlyList<ChatMessage>? Messages = null,
    int Complexity = -1,
    string? Category = null,
    bool IsPlainText = false)
{
    public bool IsChat => Messages != null;

    /// <summary>A plain-text (LM loss on all tokens) record; the text lives in <see cref="Output"/>.</summary>
    public static InstructionRecord PlainText(string text, string task, RecordSource source = default) =>
        new("", "", text, task, source, IsPlainText: true);
}
