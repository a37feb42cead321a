namespace InstructTune.Data.Quality;

/// <summary>
/// ROUGE-L F-measure (Lin 2004) over lowercase alphanumeric words: LCS length l, precision l/|candidate|,
/// recall l/|reference|, F = 2PR/(P+R) (β = 1, as rouge_score's rougeL reports). Self-Instruct keeps a generated
/// instruction only if its ROUGE-L against every instruction already in the pool is below 0.7.
/// </summary>
public static class RougeL
{
    public static double FMeasure(string candidate, string reference) => FMeasure(TextNormalizer.Words(candidate), TextNormalizer.Words(reference));

    public static double FMeasure(string[] c, string[] r)
    {
        if (c.Length == 0 || r.Length == 0) return 0;
        int l = Lcs(c, r);
        if (l == 0) return 0;
        double p = (double)l / c.Length, rec = (double)l / r.Length;
        return 2 * p * rec / (p + rec);
    }

    /// <summary>Longest common subsequence length, two rolling rows.</summary>
    public static int Lcs(string[] a, string[] b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
                cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : Math.Max(prev[j], cur[j - 1]);
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
