// `itune score` as a library call: each input line {"ids":[…]} (or {"text":"…"} with a tokenizer) becomes one
// output line {"ids":[…], "next_token_logprobs":[…], "loss": x} (+ "logits" [[…]…] when asked). A line
// {"prompt":"…","response":"…"} is the prompt put in the model's prompt format (the one its adapter recorded in
// instructtune.json, see `itune score --template`) followed by the response; its output line adds
// "response_start" (index of the response's first token), "response_tokens" and "response_loss" (mean negative
// log-likelihood of the response tokens given everything before them). Bad lines are reported as FILE:LINE with
// the field at fault.
using System.Text;
using System.Text.Json;

namespace InstructTune.Models.Inference;

/// <summary>One sequence to score; <see cref="ResponseStart"/> is set for {"prompt","response"} lines.</summary>
public sealed record ScoreInput(int[] Ids, int? ResponseStart);

public static class JsonlScoring
{
    /// <param name="encodePair">(prompt, response) → the ids of the formatted prompt followed by the response, and
    /// the index of the response's first token; null when the model has no tokenizer.</param>
    public static List<ScoreInput> ReadInputs(string path, Func<string, int[]>? encode, int vocabSize, int maxPositions,
        Func<string, string, (int[] Ids, int ResponseStart)>? encodePair = null)
    {
        var inputs = new List<ScoreInput>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{path}:{lineNo}";
            int[] ids;
            int? responseStart = null;
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
                else if (root.TryGetProperty("prompt", out var promptEl) && promptEl.ValueKind == JsonValueKind.String)
                {
                    if (!root.TryGetProperty("response", out var respEl) || respEl.ValueKind != JsonValueKind.String || respEl.GetString()!.Length == 0)
                        throw new InvalidDataException($"{where}: \"prompt\" needs a non-empty string \"response\" to score");
                    if (encodePair == null) throw new InvalidDataException($"{where}: \"prompt\" needs a tokenizer in the model folder; give \"ids\" instead");
                    (ids, int start) = encodePair(promptEl.GetString()!, respEl.GetString()!);
                    responseStart = start;
                }
                else throw new InvalidDataException($"{where}: expected a field \"ids\" (array), \"text\" (string) or \"prompt\" and \"response\" (strings)");
            }
            catch (JsonException e) { throw new InvalidDataException($"{where}: malformed JSON: {e.Message}", e); }
            if (ids.Length == 0) throw new InvalidDataException($"{where}: \"ids\" is empty");
            foreach (var id in ids)
                if ((uint)id >= (uint)vocabSize) throw new InvalidDataException($"{where}: token id {id} is outside the vocabulary [0, {vocabSize})");
            if (ids.Length > maxPositions)
                throw new InvalidDataException($"{where}: {ids.Length} tokens exceed max_position_embeddings={maxPositions}; shorten the input");
            inputs.Add(new ScoreInput(ids, responseStart));
        }
        return inputs;
    }

    /// <summary>Writes one result line (invariant culture, round-trippable numbers).</summary>
    public static void WriteLine(Stream output, ScoreResult r, int vocabSize, int? responseStart = null)
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
            if (responseStart is int k)
            {
                // next_token_logprobs[t] = log p(ids[t+1] | ids[..t]): the response's tokens are t+1 = k … T-1.
                int n = r.Ids.Length - k;
                double sum = 0;
                for (int t = k - 1; t < r.NextTokenLogprobs.Length; t++) sum += r.NextTokenLogprobs[t];
                w.WriteNumber("response_start", k);
                w.WriteNumber("response_tokens", n);
                if (n > 0) w.WriteNumber("response_loss", -sum / n); else w.WriteNull("response_loss");
            }
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
