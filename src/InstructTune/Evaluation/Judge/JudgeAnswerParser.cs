using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace InstructTune.Evaluation.Judge;

/// <summary>Which response a pairwise judge preferred.</summary>
public enum PairwiseWinner { A, B, Tie }

/// <summary>
/// Reads a judge's answer however it came: a JSON object (also inside a ```json fence or after prose), then
/// "Score: 7/10", "Rating: 8", "[[6]]", "7 out of 10", "7/10" (the last such mention wins: judges reason first
/// and conclude last). Scores on another scale ("4/5", "80/100") are mapped linearly onto 1–10. Anything outside
/// 1–10 or with no number is null — the caller reports it, it never becomes a silent 0.
/// </summary>
public static partial class JudgeAnswerParser
{
    [GeneratedRegex(@"(?:score|rating|irs|grade)\W{0,3}\s*(?:is|of|:|=)?\s*\**\s*(\d+(?:\.\d+)?)(?:\s*(?:/|out\s+of)\s*(\d+))?", RegexOptions.IgnoreCase)]
    private static partial Regex Labelled();
    [GeneratedRegex(@"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")]
    private static partial Regex DoubleBracket();
    [GeneratedRegex(@"(\d+(?:\.\d+)?)\s*(?:/|out\s+of)\s*(\d+)", RegexOptions.IgnoreCase)]
    private static partial Regex Fraction();

    public static double? ParseScore(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        foreach (var obj in JsonObjects(text))
            foreach (var key in new[] { "score", "rating", "irs", "grade" })
                if (TryGetNumber(obj, key, out var v)) return InRange(v);
        foreach (var rx in new[] { DoubleBracket(), Labelled(), Fraction() })
        {
            var matches = rx.Matches(text);
            if (matches.Count == 0) continue;
            var m = matches[^1];
            double value = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            if (m.Groups.Count > 2 && m.Groups[2].Success)
            {
                double scale = double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
                if (scale <= 0 || value > scale) return null;
                if (scale != 10) value = 1 + (value / scale) * 9;
            }
            return InRange(value);
        }
        return null;
    }

    private static double? InRange(double v) => v is >= 1 and <= 10 ? v : null;

    [GeneratedRegex(@"\[\[\s*(A|B|tie|C)\s*\]\]|\bwinner\W{0,3}\s*(?:is)?\s*:?\s*\**\s*""?(A|B|tie)\b|\b(?:response|assistant|output)\s+(A|B)\s+is\s+better", RegexOptions.IgnoreCase)]
    private static partial Regex WinnerText();

    public static PairwiseWinner? ParseWinner(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        foreach (var obj in JsonObjects(text))
            if (obj.TryGetProperty("winner", out var w) && w.ValueKind == JsonValueKind.String && ToWinner(w.GetString()!) is { } won)
                return won;
        var matches = WinnerText().Matches(text);
        if (matches.Count == 0) return null;
        var g = matches[^1].Groups;
        return ToWinner(g[1].Success ? g[1].Value : g[2].Success ? g[2].Value : g[3].Value);
    }

    private static PairwiseWinner? ToWinner(string s) => s.Trim().ToUpperInvariant() switch
    {
        "A" => PairwiseWinner.A,
        "B" => PairwiseWinner.B,
        "TIE" or "C" or "DRAW" or "EQUAL" => PairwiseWinner.Tie,
        _ => null,
    };

    private static bool TryGetNumber(JsonElement obj, string key, out double value)
    {
        value = 0;
        foreach (var p in obj.EnumerateObject())
        {
            if (!p.Name.Equals(key, StringComparison.OrdinalIgnoreCase)) continue;
            if (p.Value.ValueKind == JsonValueKind.Number) return p.Value.TryGetDouble(out value);
            if (p.Value.ValueKind == JsonValueKind.String)
                return double.TryParse(p.Value.GetString()!.Split('/')[0].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out value);
        }
        return false;
    }

    // Every balanced {...} span that parses as a JSON object, in order of appearance.
    private static IEnumerable<JsonElement> JsonObjects(string text)
    {
        for (int start = text.IndexOf('{'); start >= 0; start = text.IndexOf('{', start + 1))
        {
            int depth = 0;
            bool inString = false;
            for (int i = start; i < text.Length; i++)
            {
                char c = text[i];
                if (inString) { if (c == '\\') i++; else if (c == '"') inString = false; continue; }
                if (c == '"') inString = true;
                else if (c == '{') depth++;
                else if (c == '}' && --depth == 0)
                {
                    JsonElement? el = null;
                    try
                    {
                        using var doc = JsonDocument.Parse(text.AsMemory(start, i - start + 1));
                        if (doc.RootElement.ValueKind == JsonValueKind.Object) el = doc.RootElement.Clone();
                    }
                    catch (JsonException) { }
                    if (el is { } found) yield return found;
                    break;
                }
            }
        }
    }
}
