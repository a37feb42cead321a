using System.Text.Json;
using InstructTune.Data.Records;

namespace InstructTune.Data.Loading;

/// <summary>Typed reads of JSON fields that fail with a <see cref="RecordProblem"/> naming the field.</summary>
internal static class JsonFields
{
    public static JsonElement Object(JsonElement e, string what)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new RecordProblem(null, RejectReason.WrongType, $"{what} must be a JSON object, found {e.ValueKind}");
        return e;
    }

    public static string RequiredString(JsonElement obj, string field)
    {
        if (!obj.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
            throw new RecordProblem(field, RejectReason.MissingField, $"required field '{field}' is missing");
        if (v.ValueKind != JsonValueKind.String)
            throw new RecordProblem(field, RejectReason.WrongType, $"field '{field}' must be a string, found {v.ValueKind}");
        return v.GetString()!;
    }

    /// <summary>A string field that may be absent or null (→ ""); a number or bool is a type error.</summary>
    public static string OptionalString(JsonElement obj, string field)
    {
        if (!obj.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null) return "";
        if (v.ValueKind != JsonValueKind.String)
            throw new RecordProblem(field, RejectReason.WrongType, $"field '{field}' must be a string, found {v.ValueKind}");
        return v.GetString()!;
    }

    public static string NonEmptyOutput(JsonElement obj, string field)
    {
        var s = RequiredString(obj, field);
        if (string.IsNullOrWhiteSpace(s))
            throw new RecordProblem(field, RejectReason.EmptyOutput, $"field '{field}' is empty");
        return s;
    }

    public static JsonElement RequiredArray(JsonElement obj, string field)
    {
        if (!obj.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
            throw new RecordProblem(field, RejectReason.MissingField, $"required field '{field}' is missing");
        if (v.ValueKind != JsonValueKind.Array)
            throw new RecordProblem(field, RejectReason.WrongType, $"field '{field}' must be an array, found {v.ValueKind}");
        return v;
    }

    /// <summary>SNI writes some fields as a string (2021 drafts) and others as a list of strings (release).</summary>
    public static string StringOrFirstOfList(JsonElement obj, string field, bool required)
    {
        if (!obj.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            if (required) throw new RecordProblem(field, RejectReason.MissingField, $"required field '{field}' is missing");
            return "";
        }
        if (v.ValueKind == JsonValueKind.String) return v.GetString()!;
        if (v.ValueKind == JsonValueKind.Array)
        {
            if (v.GetArrayLength() == 0)
            {
                if (required) throw new RecordProblem(field, RejectReason.MissingField, $"field '{field}' is an empty list");
                return "";
            }
            var first = v[0];
            if (first.ValueKind != JsonValueKind.String)
                throw new RecordProblem(field, RejectReason.WrongType, $"field '{field}' must hold strings, found {first.ValueKind}");
            return first.GetString()!;
        }
        throw new RecordProblem(field, RejectReason.WrongType, $"field '{field}' must be a string or a list of strings, found {v.ValueKind}");
    }
}
