using System.Text.Json;
using InstructTune.Data.Loading;
using InstructTune.Data.Records;
using InstructTune.Templates;

namespace InstructTune.Data.Preference;

/// <summary>
/// One feedback record as text: the prompt as chat messages (a plain-text prompt is one user message) and either
/// two completions (<see cref="Rejected"/> non-null: pairwise) or one completion with a desirable flag (unpaired).
/// </summary>
public sealed record FeedbackRecord(IReadOnlyList<ChatMessage> Prompt, string Chosen, string? Rejected, bool Desirable, RecordSource Source)
{
    public bool IsPair => Rejected != null;
    /// <summary>TRL's per-pair <c>margin</c> column (how much better chosen is), or null; only the reward model uses it.</summary>
    public double? Margin { get; init; }
}

/// <summary>
/// Reads feedback records, recognising each record's layout by its fields (TRL's and LLaMA-Factory's):
/// <list type="bullet">
/// <item>TRL pairwise: <c>prompt</c>, <c>chosen</c>, <c>rejected</c> — strings, or message lists (conversational);
/// without <c>prompt</c>, chosen and rejected are full conversations whose shared leading turns are the prompt.</item>
/// <item>LLaMA-Factory <c>ranking: true</c>, alpaca: <c>instruction</c> [+ <c>input</c>, <c>system</c>], <c>chosen</c>, <c>rejected</c> strings;
/// sharegpt: <c>conversations</c> (+ <c>system</c>), <c>chosen</c> and <c>rejected</c> as <c>{"from","value"}</c> turns.</item>
/// <item>Unpaired (KTO): TRL <c>prompt</c>, <c>completion</c>, <c>label</c>; LLaMA-Factory <c>messages</c> or
/// <c>conversations</c> whose last assistant turn is the completion, with <c>label</c> or <c>kto_tag</c>. A numeric
/// <c>score</c> instead of a label is desirable when ≥ the threshold.</item>
/// </list>
/// A numeric <c>margin</c> (TRL's reward-modelling column) is read into <see cref="FeedbackRecord.Margin"/>: the reward
/// model subtracts it inside its loss; other objectives say they do not use it.
/// Problems are located rejections (missing chosen/rejected/label, wrong types, identical chosen and rejected), never silent.
/// </summary>
public static class PreferenceRecords
{
    public static IEnumerable<(FeedbackRecord? Record, RecordRejection? Rejection)> Read(string path, double scoreThreshold)
    {
        if (!File.Exists(path)) throw new DataFormatException($"data.path: '{path}' is not a file");
        foreach (var chunk in JsonRecordSplitter.Split(path))
        {
            var src = new RecordSource(path, chunk.Line, chunk.Index);
            if (chunk.StructuralError != null) { yield return (null, new RecordRejection(src, null, RejectReason.Truncated, chunk.StructuralError)); continue; }
            FeedbackRecord? record = null; RecordRejection? rejection = null;
            try
            {
                using var doc = JsonDocument.Parse(chunk.Bytes);
                record = Map(doc.RootElement, src, scoreThreshold);
            }
            catch (JsonException e) { rejection = new RecordRejection(src, null, RejectReason.BadJson, e.Message); }
            catch (RecordProblem p) { rejection = new RecordRejection(src, p.Field, p.Reason, p.Message, DatasetLoader.Raw(chunk.Bytes.Span)); }
            yield return (record, rejection);
        }
    }

    public const string IdenticalPair = "identical_chosen_rejected";
    public const string MissingLabel = "missing_label";
    public const string PromptTooLong = "prompt_too_long";

    public static FeedbackRecord Map(JsonElement e, RecordSource src, double scoreThreshold)
    {
        JsonFields.Object(e, "a record");
        bool Has(string f) => e.TryGetProperty(f, out var v) && v.ValueKind != JsonValueKind.Null;
        if (Has("chosen") || Has("rejected"))
        {
            if (!Has("chosen")) throw new RecordProblem("chosen", RejectReason.MissingField, "pairwise record has 'rejected' but no 'chosen'");
            if (!Has("rejected")) throw new RecordProblem("rejected", RejectReason.MissingField, "pairwise record has 'chosen' but no 'rejected'");
            List<ChatMessage> prompt;
            string chosen, rejected;
            if (Has("conversations"))
            {
                prompt = SystemTurn(e);
                prompt.AddRange(Turns(e.GetProperty("conversations"), "conversations", "from", "value"));
                chosen = Turn(e.GetProperty("chosen"), "chosen", "from", "value");
                rejected = Turn(e.GetProperty("rejected"), "rejected", "from", "value");
            }
            else if (Has("instruction"))
            {
                prompt = SystemTurn(e);
                prompt.Add(new ChatMessage("user", AlpacaPrompt(e)));
                chosen = JsonFields.NonEmptyOutput(e, "chosen");
                rejected = JsonFields.NonEmptyOutput(e, "rejected");
            }
            else if (Has("prompt"))
            {
                prompt = Prompt(e.GetProperty("prompt"));
                chosen = Completion(e.GetProperty("chosen"), "chosen");
                rejected = Completion(e.GetProperty("rejected"), "rejected");
            }
            else
            {
                // Implicit prompt: two conversations that differ only in their last assistant turn.
                var c = Turns(e.GetProperty("chosen"), "chosen", "role", "content");
                var r = Turns(e.GetProperty("rejected"), "rejected", "role", "content");
                if (c.Count < 2 || r.Count != c.Count || c[^1].Role != "assistant" || r[^1].Role != "assistant" || !c.Take(c.Count - 1).SequenceEqual(r.Take(r.Count - 1)))
                    throw new RecordProblem("prompt", RejectReason.MissingField,
                        "no 'prompt', and 'chosen'/'rejected' are not conversations sharing every turn but the last assistant one");
                prompt = c.Take(c.Count - 1).ToList();
                chosen = c[^1].Content; rejected = r[^1].Content;
            }
            if (prompt.Count == 0) throw new RecordProblem("prompt", RejectReason.EmptyInstruction, "the prompt is empty");
            if (chosen == rejected) throw new RecordProblem("rejected", IdenticalPair, "chosen and rejected are identical: the pair teaches nothing");
            return new FeedbackRecord(prompt, chosen, rejected, true, src) { Margin = Margin(e) };
        }
        bool desirable = Label(e, scoreThreshold);
        if (Has("completion"))
        {
            if (!Has("prompt")) throw new RecordProblem("prompt", RejectReason.MissingField, "required field 'prompt' is missing");
            return new FeedbackRecord(Prompt(e.GetProperty("prompt")), Completion(e.GetProperty("completion"), "completion"), null, desirable, src) { Margin = Margin(e) };
        }
        var (field, role, content) = Has("messages") ? ("messages", "role", "content") : ("conversations", "from", "value");
        if (!Has(field)) throw new RecordProblem("completion", RejectReason.MissingField, "no 'chosen'/'rejected', 'completion', 'messages' or 'conversations' field");
        var turns = SystemTurn(e);
        turns.AddRange(Turns(e.GetProperty(field), field, role, content));
        if (turns.Count < 2 || turns[^1].Role != "assistant")
            throw new RecordProblem(field, RejectReason.NoAssistantTurn, $"'{field}' must end with the assistant turn that is rated");
        return new FeedbackRecord(turns.Take(turns.Count - 1).ToList(), turns[^1].Content, null, desirable, src) { Margin = Margin(e) };
    }

    private static double? Margin(JsonElement e)
    {
        if (!e.TryGetProperty("margin", out var m) || m.ValueKind == JsonValueKind.Null) return null;
        if (m.ValueKind != JsonValueKind.Number || !double.IsFinite(m.GetDouble()))
            throw new RecordProblem("margin", RejectReason.WrongType, $"'margin' must be a finite number, found {(m.ValueKind == JsonValueKind.Number ? m.GetRawText() : m.ValueKind.ToString())}");
        return m.GetDouble();
    }

    private static bool Label(JsonElement e, double threshold)
    {
        foreach (var f in new[] { "label", "kto_tag" })
            if (e.TryGetProperty(f, out var v) && v.ValueKind != JsonValueKind.Null)
                return v.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw new RecordProblem(f, RejectReason.WrongType, $"'{f}' must be true or false, found {v.ValueKind}"),
                };
        if (e.TryGetProperty("score", out var s) && s.ValueKind != JsonValueKind.Null)
        {
            if (s.ValueKind != JsonValueKind.Number) throw new RecordProblem("score", RejectReason.WrongType, $"'score' must be a number, found {s.ValueKind}");
            return s.GetDouble() >= threshold;
        }
        throw new RecordProblem("label", MissingLabel, "unpaired feedback needs 'label' (true/false), 'kto_tag' or a numeric 'score'");
    }

    private static string AlpacaPrompt(JsonElement e)
    {
        var instruction = JsonFields.RequiredString(e, "instruction");
        if (string.IsNullOrWhiteSpace(instruction)) throw new RecordProblem("instruction", RejectReason.EmptyInstruction, "field 'instruction' is empty");
        var input = JsonFields.OptionalString(e, "input");
        return input.Length > 0 ? instruction + "\n" + input : instruction;   // LLaMA-Factory joins them with one newline
    }

    private static List<ChatMessage> SystemTurn(JsonElement e)
    {
        var system = JsonFields.OptionalString(e, "system");
        return system.Length > 0 ? [new ChatMessage("system", system)] : [];
    }

    private static List<ChatMessage> Prompt(JsonElement p) => p.ValueKind == JsonValueKind.String
        ? [new ChatMessage("user", p.GetString()!)]
        : Turns(p, "prompt", "role", "content");

    /// <summary>A completion: a string, one assistant message, or a one-message list (TRL conversational).</summary>
    private static string Completion(JsonElement c, string field)
    {
        string text = c.ValueKind switch
        {
            JsonValueKind.String => c.GetString()!,
            JsonValueKind.Object => Turn(c, field, "role", "content"),
            JsonValueKind.Array => Turns(c, field, "role", "content") is { Count: 1 } one && one[0].Role == "assistant"
                ? one[0].Content
                : throw new RecordProblem(field, RejectReason.WrongType, $"'{field}' as a list must hold exactly one assistant message"),
            _ => throw new RecordProblem(field, RejectReason.WrongType, $"'{field}' must be a string or assistant message(s), found {c.ValueKind}"),
        };
        if (string.IsNullOrWhiteSpace(text)) throw new RecordProblem(field, RejectReason.EmptyOutput, $"'{field}' is empty");
        return text;
    }

    private static string Turn(JsonElement t, string field, string roleField, string contentField)
    {
        if (t.ValueKind == JsonValueKind.String) return t.GetString()!;
        var m = Turns(JsonDocument.Parse("[" + t.GetRawText() + "]").RootElement, field, roleField, contentField)[0];
        if (m.Role != "assistant") throw new RecordProblem(field, RejectReason.UnknownRole, $"'{field}' must be an assistant turn, found role '{m.Role}'");
        return m.Content;
    }

    private static List<ChatMessage> Turns(JsonElement list, string field, string roleField, string contentField)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new RecordProblem(field, RejectReason.WrongType, $"'{field}' must be a list of messages, found {list.ValueKind}");
        var turns = new List<ChatMessage>();
        int i = 0;
        foreach (var t in list.EnumerateArray())
        {
            var at = $"{field}[{i++}]";
            if (t.ValueKind != JsonValueKind.Object) throw new RecordProblem(at, RejectReason.WrongType, "turn must be an object");
            if (!t.TryGetProperty(roleField, out var r) || r.ValueKind != JsonValueKind.String) throw new RecordProblem($"{at}.{roleField}", RejectReason.MissingField, $"turn needs a string '{roleField}'");
            if (!t.TryGetProperty(contentField, out var c) || c.ValueKind != JsonValueKind.String) throw new RecordProblem($"{at}.{contentField}", RejectReason.MissingField, $"turn needs a string '{contentField}'");
            var role = RecordMappers.NormaliseRole(r.GetString()!) ?? throw new RecordProblem($"{at}.{roleField}", RejectReason.UnknownRole, $"unknown role '{r.GetString()}'");
            turns.Add(new ChatMessage(role, c.GetString()!));
        }
        return turns;
    }
}
