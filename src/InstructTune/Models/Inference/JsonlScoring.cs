// `itune score` as a library call: each input line {"ids":[…]} (or {"text":"…"} with a tokenizer) becomes one
// output line {"ids":[…], "next_token_logprobs":[…], "loss": x} (+ "logits" [[…]…] when asked). Bad lines are
// reported as FILE:LINE with the field at fault.
using System.Text;
using System.Text.Json;

namespace InstructTune.Models.Inference;

public static class JsonlScoring
{
    public static List<int[]> ReadInputs(string path, Func<string, int[]>? encode, int vocabSize, int maxPositions)
    {
        var inputs = new List<int[]>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{path}:{lineNo}";
            int[] ids;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{where}: expected a JSON object");
                if (root.TryGetProperty("ids", out var idsEl))
                {
                    if (idsEl.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{where}: \"ids\" must be an array of integers");
                    ids = idsEl.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var v) ? v
                        : throw new InvalidDataException($"{where}: \"ids\" must hold integers, got {e.GetRawText()}")).ToArray();
                }
                else if (root.TryGetProperty("text", out var textEl) && textEl.ValueKind == JsonValueKind.String)
                {
                    if (encode == null) throw new InvalidDataException($"{where}: \"text\" needs a tokenizer in the model folder; give \"ids\" instead");
                    ids = encode(textEl.GetString()!);
                }
                else throw new InvalidDataException($"{where}: expected a field \"ids\" (array) or \"text\" (string)");
            }
            catch (JsonException e) { throw new InvalidDataException($"{where}: malformed JSON: {e.Message}", e); }
            if (ids.Length == 0) throw new InvalidDataException($"{where}: \"ids\" is empty");
            foreach (var id in ids)
                if ((uint)id >= (uint)vocabSize) throw new InvalidDataException($"{where}: token id {id} is outside the vocabulary [0, {vocabSize})");
            if (ids.Length > maxPositions)
                throw new InvalidDataException($"{where}: {ids.Length} tokens exceed max_position_embeddings={maxPositions}; shorten the input");
            inputs.Add(ids);
        }
        return inputs;
    }

    /// <summary>Writes one result line (invariant culture, round-trippable numbers).</summary>
    public static void WriteLine(Stream output, ScoreResult r, int vocabSize)
    {
        using (var w = new Utf8JsonWriter(output))
        {
            w.WriteStartObject();
            w.WriteStartArray("ids");
            foreach (var id in r.Ids) w.WriteNumberValue(id);
            w.WriteEndArray();
            w.WriteStartArray("next_token_logprobs");
            foreach (var lp in r.NextTokenLogprobs) w.WriteNumberValue(lp);
            w.WriteEndArray();
            if (r.Loss is double loss) w.WriteNumber("loss", loss); else w.WriteNull("loss");
            if (r.Logits is { } logits)
            {
                w.WriteStartArray("logits");
                for (int t = 0; t < r.Ids.Length; t++)
                {
                    w.WriteStartArray();
                    for (int v = 0; v < vocabSize; v++) w.WriteNumberValue(logits[t * vocabSize + v]);
                    w.WriteEndArray();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        output.WriteByte((byte)'\n');
    }
}
