using System.Text.Json;

namespace InstructTune.Evaluation.IFEval.Instructions;

/// <summary>An instruction's kwargs could not be bound; the message names the prompt, instruction and field.</summary>
public sealed class InstructionArgumentException(string message) : InstructTune.Common.InputException(message);

/// <summary>
/// Typed access to one instruction's kwargs object from <c>input_data.jsonl</c>. Missing or mistyped
/// arguments are errors naming <see cref="Where"/> (the official code would pick a random value instead,
/// which would make the evaluation meaningless).
/// </summary>
public sealed class InstructionArgs
{
    private readonly JsonElement _kwargs;

    /// <summary>Where these kwargs come from, e.g. <c>input_data.jsonl:12 (key 1001) keywords:frequency</c>.</summary>
    public string Where { get; }

    public InstructionArgs(JsonElement kwargs, string where)
    {
        _kwargs = kwargs;
        Where = where;
    }

    private JsonElement Get(string name)
    {
        if (_kwargs.ValueKind == JsonValueKind.Object && _kwargs.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null)
            return v;
        throw new InstructionArgumentException($"{Where}: missing argument '{name}'");
    }

    public long Int(string name)
    {
        var v = Get(name);
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n)) return n;
        throw new InstructionArgumentException($"{Where}: argument '{name}' must be an integer, got {v.GetRawText()}");
    }

    public string Str(string name)
    {
        var v = Get(name);
        if (v.ValueKind == JsonValueKind.String) return v.GetString()!;
        throw new InstructionArgumentException($"{Where}: argument '{name}' must be a string, got {v.GetRawText()}");
    }

    public List<string> StrList(string name)
    {
        var v = Get(name);
        if (v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String))
            return v.EnumerateArray().Select(e => e.GetString()!).ToList();
        throw new InstructionArgumentException($"{Where}: argument '{name}' must be a list of strings, got {v.GetRawText()}");
    }

    internal Relation Relation(string name) => Str(name) switch
    {
        "less than" => Instructions.Relation.LessThan,
        "at least" => Instructions.Relation.AtLeast,
        var other => throw new InstructionArgumentException(
            $"{Where}: argument '{name}' must be 'less than' or 'at least', got '{other}'"),
    };
}
