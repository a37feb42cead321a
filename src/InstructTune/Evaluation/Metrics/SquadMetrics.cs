namespace InstructTune.Evaluation.Metrics;

/// <summary>
/// Exact match and token F1 as the official SQuAD v1.1 evaluation script defines them: answers are normalised
/// (lowercase, drop ASCII punctuation, drop the articles a/an/the as whole words, collapse whitespace) and the
/// score against several references is the maximum over them.
/// </summary>
public static class SquadMetrics
{
    // Python's string.punctuation: the 32 ASCII punctuation characters.
    private const string AsciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    // Python's \b: a word character is a letter, a number or '_' (str.isalnum); .NET's \w also counts combining
    // marks, so the boundary is spelled out to match Python on text like "the\u0301".
    private static readonly System.Text.RegularExpressions.Regex Articles =
        new(@"(?<![\p{L}\p{N}_])(a|an|the)(?![\p{L}\p{N}_])", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>normalize_answer of SQuAD v1.1: lower → remove punctuation → remove articles → fix whitespace.</summary>
    public static string Normalize(string text)
    {
        var lower = PythonText.Lower(text);
        var sb = new System.Text.StringBuilder(lower.Length);
        foreach (var c in lower)
            if (AsciiPunctuation.IndexOf(c) < 0) sb.Append(c);
        var noArticles = Articles.Replace(sb.ToString(), " ");
        return string.Join(' ', PythonText.Split(noArticles));
    }

    /// <summary>True when the normalised prediction equals the normalised form of any reference.</summary>
    public static bool ExactMatch(string prediction, IReadOnlyList<string> references)
    {
        var p = Normalize(prediction);
        foreach (var r in references)
            if (p == Normalize(r)) return true;
        return false;
    }

    /// <summary>Token F1 (bag-of-tokens overlap of the normalised strings), max over references; 0 with no references.</summary>
    public static double F1(string prediction, IReadOnlyList<string> references)
    {
        double best = 0;
        var predTokens = PythonText.Split(Normalize(prediction));
        foreach (var r in references)
            best = Math.Max(best, F1Tokens(predTokens, PythonText.Split(Normalize(r))));
        return best;
    }

    // v1.1 returns 0 when nothing is shared, including when both sides are empty (v2.0 changed that; we follow v1.1).
    private static double F1Tokens(List<string> pred, List<string> gold)
    {
        var goldCounts = NGramCounter.Count(gold, 1);
        int same = 0;
        foreach (var (gram, count) in NGramCounter.Count(pred, 1))
            if (goldCounts.TryGetValue(gram, out var g)) same += Math.Min(count, g);
        if (same == 0) return 0;
        double precision = (double)same / pred.Count, recall = (double)same / gold.Count;
        return 2 * precision * recall / (precision + recall);
    }
}
