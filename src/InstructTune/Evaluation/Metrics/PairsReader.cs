using System.Text.Json;

namespace InstructTune.Evaluation.Metrics;

/// <summary>A bad input line, named by file, 1-based line and field.</summary>
public sealed class EvalInputException(string message) : InstructTune.Common.InputException(message);

/// <summary>
/// Reads the <c>{"id", "prediction", "references":[…]}</c> JSONL of <c>itune eval metrics</c>. Every broken line is
/// collected (file:line: field: problem) and all are reported together, so one run shows every fix needed.
/// Blank lines are skipped; a missing id falls back to the line number; duplicate ids are errors.
/// </summary>
public static class PairsReader
{
    public static List<MetricPair> Read(string path)
    {
        if (!File.Exists(path)) throw new EvalInputException($"{path}: file not found");
        var pairs = new List<MetricPair>();
        var errors = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                var pair = Parse(line, lineNo);
                if (!seen.Add(pair.Id)) throw new EvalInputException($"id: duplicate id \"{pair.Id}\"");
                pairs.Add(pair);
            }
            catch (Exception ex) when (ex is JsonException or EvalInputException)
            {
                errors.Add($"{path}:{lineNo}: {ex.Message}");
            }
        }
        if (errors.Count > 0)
            throw new EvalInputException($"{errors.Count} bad line(s):\n" + string.Join('\n', errors));
        return pairs;
    }

    private static MetricPair Parse(string line, int lineNo)
    {
        using var doc = JsonDocument.Parse(line);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object) throw new EvalInputException("line is not a JSON object");
        string id = lineNo.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (root.TryGetProperty("id", out var idEl))
            id = idEl.ValueKind switch
            {
                JsonValueKind.String => idEl.GetString()!,
                JsonValueKind.Number => idEl.GetRawText(),
                _ => throw new EvalInputException("id: must be a string or a number"),
            };
        if (!root.TryGetProperty("prediction", out var predEl) || predEl.ValueKind != JsonValueKind.String)
            throw new EvalInputException("prediction: missing or not a string");
        if (!root.TryGetProperty("references", out var refsEl) || refsEl.ValueKind != JsonValueKind.Array)
            throw new EvalInputException("references: missing or not an array of strings");
        var refs = new List<string>();
        int k = 0;
        foreach (var r in refsEl.EnumerateArray())
        {
            if (r.ValueKind != JsonValueKind.String) throw new EvalInputException($"references[{k}]: not a string");
            refs.Add(r.GetString()!);
            k++;
        }
        if (refs.Count == 0) throw new EvalInputException("references: empty (at least one reference is needed)");
        return new MetricPair(id, predEl.GetString()!, refs);
    }
}
