namespace InstructTune.Evaluation.Metrics;

/// <summary>Counts the n-grams of a token list, each n-gram keyed by its tokens joined with U+0001 (a character no
/// tokenizer here emits, so keys never collide).</summary>
public static class NGramCounter
{
    private const char Sep = '\u0001';

    /// <summary>Counts of every n-gram of exactly order <paramref name="n"/>.</summary>
    public static Dictionary<string, int> Count(IReadOnlyList<string> tokens, int n)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i + n <= tokens.Count; i++)
        {
            var key = n == 1 ? tokens[i] : string.Join(Sep, tokens.Skip(i).Take(n));
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        return counts;
    }
}
