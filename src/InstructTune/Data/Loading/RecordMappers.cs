using System.Text.Json;
using InstructTune.Data.Records;
using InstructTune.Templates;

namespace InstructTune.Data.Loading;

/// <summary>
/// Turns one parsed JSON record of a given format into <see cref="InstructionRecord"/>s (Self-Instruct tasks give
/// one per instance). Every problem is a <see cref="RecordProblem"/> naming the field, so nothing is dropped silently.
/// </summary>
internal static class RecordMappers
{
    public static void Map(DataFormat format, JsonElement e, RecordSource src, FieldMap f, string task, List<InstructionRecord> into)
    {
        JsonFields.Object(e, "a record");
        switch (format)
        {
            case DataFormat.Alpaca:
                {
                    var label = OptionalLabel(e, f["task"]) ?? task;
                    into.Add(new InstructionRecord(Instruction(e, f["instruction"]), JsonFields.OptionalString(e, f["input"]),
                        JsonFields.NonEmptyOutput(e, f["output"]), label, src, Complexity: OptionalComplexity(e)));
                    break;
                }
            case DataFormat.Dolly:
                {
                    var category = JsonFields.OptionalString(e, f["category"]);
                    into.Add(new InstructionRecord(Instruction(e, f["instruction"]), JsonFields.OptionalString(e, f["context"]),
                        JsonFields.NonEmptyOutput(e, f["response"]), category.Length > 0 ? category : task, src, Category: category));
                    break;
                }
            case DataFormat.Gsm8k:
                {
                    var answer = JsonFields.NonEmptyOutput(e, f["answer"]);
                    if (!answer.Contains("####"))
                        throw new RecordProblem(f["answer"], RejectReason.NoFinalAnswer, "answer has no '#### <final answer>' line");
                    into.Add(new InstructionRecord(Instruction(e, f["question"]), "", answer, task, src));
                    break;
                }
            case DataFormat.Text:
                into.Add(InstructionRecord.PlainText(JsonFields.NonEmptyOutput(e, f["text"]), task, src));
                break;
            case DataFormat.ShareGpt:
                into.Add(ShareGpt(e, src, f, task));
                break;
            case DataFormat.Messages:
                into.Add(Messages(e, src, f, task));
                break;
            case DataFormat.SelfInstruct:
                {
                    var instruction = Instruction(e, f["instruction"]);
                    var name = OptionalLabel(e, f["name"]) ?? OptionalLabel(e, "id") ?? task;
                    var instances = JsonFields.RequiredArray(e, f["instances"]);
                    if (instances.GetArrayLength() == 0)
                        throw new RecordProblem(f["instances"], RejectReason.MissingField, "task has no instances");
                    int i = 0;
                    foreach (var inst in instances.EnumerateArray())
                    {
                        var field = $"{f["instances"]}[{i++}]";
                        if (inst.ValueKind != JsonValueKind.Object)
                            throw new RecordProblem(field, RejectReason.WrongType, "instance must be an object");
                        into.Add(new InstructionRecord(instruction, Prefixed(field, () => JsonFields.OptionalString(inst, f["input"])),
                            Prefixed(field, () => JsonFields.NonEmptyOutput(inst, f["output"])), name, src));
                    }
                    break;
                }
            default:
                throw new InvalidOperationException($"{format} records are not read through the JSON record mapper");
        }
    }

    private static string Instruction(JsonElement e, string field)
    {
        var s = JsonFields.RequiredString(e, field);
        if (string.IsNullOrWhiteSpace(s))
            throw new RecordProblem(field, RejectReason.EmptyInstruction, $"field '{field}' is empty");
        return s;
    }

    /// <summary>The record's own complexity level when it states one: the task suite's integer 0/1/2 or the synth
    /// recipes' name (simple / conditional / multi-step); -1 (unknown: evaluation classifies the instruction) otherwise.</summary>
    private static int OptionalComplexity(JsonElement e)
    {
        if (!e.TryGetProperty("complexity", out var v)) return -1;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n is >= 0 and <= 2) return n;
        return v.ValueKind == JsonValueKind.String ? v.GetString() switch { "simple" => 0, "conditional" => 1, "multi-step" => 2, _ => -1 } : -1;
    }

    private static string? OptionalLabel(JsonElement e, string field) =>
        e.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String && v.GetString()!.Length > 0 ? v.GetString() : null;

    /// <summary>Re-raises a nested field's problem with its full path (e.g. <c>instances[3].output</c>).</summary>
    private static string Prefixed(string prefix, Func<string> read)
    {
        try { return read(); }
        catch (RecordProblem p) { throw new RecordProblem($"{prefix}.{p.Field}", p.Reason, p.Message); }
    }

    /// <summary>Role names seen in the wild mapped to system/user/assistant/tool; null when unknown.</summary>
    public static string? NormaliseRole(string role) => role.ToLowerInvariant() switch
    {
        "system" => "system",
        "human" or "user" => "user",
        "gpt" or "assistant" or "bot" or "model" or "chatgpt" => "assistant",
        // A tool call is something the model must learn to emit, so it is an assistant turn (as in LLaMA-Factory).
        "function_call" => "assistant",
        "observation" or "tool" or "function" or "ipython" => "tool",
        _ => null,
    };

    private static InstructionRecord ShareGpt(JsonElement e, RecordSource src, FieldMap f, string task)
    {
        var turns = JsonFields.RequiredArray(e, f["conversations"]);
        var messages = new List<ChatMessage>();
        var system = JsonFields.OptionalString(e, f["system"]);
        // Tool schemas are context the model needs to emit calls; they travel in the system turn.
        if (e.TryGetProperty(f["tools"], out var tools) && tools.ValueKind == JsonValueKind.String && tools.GetString()!.Length > 0)
            system = system.Length > 0 ? system + "\n\nTools: " + tools.GetString() : "Tools: " + tools.GetString();
        if (system.Length > 0) messages.Add(new ChatMessage("system", system));
        ReadTurns(turns, f["conversations"], f["from"], f["value"], messages);
        return Chat(messages, f["conversations"], task, src);
    }

    private static InstructionRecord Messages(JsonElement e, RecordSource src, FieldMap f, string task)
    {
        var turns = JsonFields.RequiredArray(e, f["messages"]);
        var messages = new List<ChatMessage>();
        ReadTurns(turns, f["messages"], f["role"], f["content"], messages);
        return Chat(messages, f["messages"], task, src);
    }

    private static void ReadTurns(JsonElement turns, string listField, string roleField, string contentField, List<ChatMessage> into)
    {
        int i = 0;
        foreach (var turn in turns.EnumerateArray())
        {
            var at = $"{listField}[{i++}]";
            if (turn.ValueKind != JsonValueKind.Object)
                throw new RecordProblem(at, RejectReason.WrongType, "turn must be an object");
            var role = Prefixed(at, () => JsonFields.RequiredString(turn, roleField));
            var content = Prefixed(at, () => JsonFields.RequiredString(turn, contentField));
            var normal = NormaliseRole(role)
                ?? throw new RecordProblem($"{at}.{roleField}", RejectReason.UnknownRole, $"unknown role '{role}'");
            if (normal == "assistant" && string.IsNullOrWhiteSpace(content))
                throw new RecordProblem($"{at}.{contentField}", RejectReason.EmptyOutput, "assistant turn is empty");
            into.Add(new ChatMessage(normal, content));
        }
    }

    private static InstructionRecord Chat(List<ChatMessage> messages, string field, string task, RecordSource src)
    {
        if (!messages.Any(m => m.Role == "assistant"))
            throw new RecordProblem(field, RejectReason.NoAssistantTurn, "conversation has no assistant turn");
        return new InstructionRecord("", "", "", task, src, messages);
    }
}
