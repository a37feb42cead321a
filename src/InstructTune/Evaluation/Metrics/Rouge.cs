namespace InstructTune.Evaluation.Metrics;

/// <summary>Precision, recall and F-measure of one ROUGE variant.</summary>
public readonly record struct RougeScore(double Precision, double Recall, double FMeasure)
{
    public static readonly RougeScore Zero = new(0, 0, 0);

    public static RougeScore FromCounts(int hits, int predictionCount, int targetCount)
    {
        double p = (double)hits / Math.Max(predictionCount, 1), r = (double)hits / Math.Max(targetCount, 1);
        return new RougeScore(p, r, p + r > 0 ? 2 * p * r / (p + r) : 0);
    }
}

/// <summary>ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum of one prediction against one target.</summary>
public readonly record struct RougeScores(RougeScore Rouge1, RougeScore Rouge2, RougeScore RougeL, RougeScore RougeLsum);

/// <summary>
/// ROUGE as Google's rouge_score computes it (Lin 2004 definitions; rouge_score's tokenizer, see
/// <see cref="RougeTokenizer"/>). ROUGE-N: clipped n-gram overlap. ROUGE-L: LCS over the whole token sequence.
/// ROUGE-Lsum: summary-level LCS, sentences split on '\n' only; per reference sentence the union of its LCS
/// alignments with every candidate sentence, each token credited at most as often as it occurs on both sides (as
/// ROUGE-1.5.5 and rouge_score do). Which LCS is taken when several exist changes Lsum, so the backtrack prefers a
/// diagonal step, then moving left in the candidate when that cell is strictly larger, else moving up — the order
/// rouge_score uses. With several references the score of each variant is the one with the best F-measure
/// (rouge_score's <c>score_multi</c>).
/// </summary>
public static class Rouge
{
    public static RougeScores Score(string target, string prediction, bool stem = false)
    {
        var t = RougeTokenizer.Tokenize(target, stem);
        var p = RougeTokenizer.Tokenize(prediction, stem);
        return new RougeScores(NGram(t, p, 1), NGram(t, p, 2), Lcs(t, p),
            SummaryLcs(Sentences(target, stem), Sentences(prediction, stem)));
    }

    /// <summary>Best F-measure over the references for each variant separately; zeros with no references.</summary>
    public static RougeScores ScoreMulti(IReadOnlyList<string> targets, string prediction, bool stem = false)
    {
        if (targets.Count == 0) return new RougeScores(RougeScore.Zero, RougeScore.Zero, RougeScore.Zero, RougeScore.Zero);
        var all = targets.Select(t => Score(t, prediction, stem)).ToList();
        return new RougeScores(Best(all, s => s.Rouge1), Best(all, s => s.Rouge2), Best(all, s => s.RougeL),
            Best(all, s => s.RougeLsum));
    }

    // Ties keep the earlier reference, like Python's max over a list.
    private static RougeScore Best(List<RougeScores> all, Func<RougeScores, RougeScore> pick)
    {
        var best = pick(all[0]);
        foreach (var s in all.Skip(1))
            if (pick(s).FMeasure > best.FMeasure) best = pick(s);
        return best;
    }

    public static RougeScore NGram(IReadOnlyList<string> target, IReadOnlyList<string> prediction, int n)
    {
        var tc = NGramCounter.Count(target, n);
        var pc = NGramCounter.Count(prediction, n);
        int hits = 0;
        foreach (var (gram, count) in tc)
            if (pc.TryGetValue(gram, out var c)) hits += Math.Min(count, c);
        return RougeScore.FromCounts(hits, pc.Values.Sum(), tc.Values.Sum());
    }

    public static RougeScore Lcs(IReadOnlyList<string> target, IReadOnlyList<string> prediction)
    {
        if (target.Count == 0 || prediction.Count == 0) return RougeScore.Zero;
        int lcs = LcsTable(target, prediction)[target.Count, prediction.Count];
        return RougeScore.FromCounts(lcs, prediction.Count, target.Count);
    }

    private static List<List<string>> Sentences(string text, bool stem) =>
        text.Split('\n').Where(s => s.Length > 0).Select(s => RougeTokenizer.Tokenize(s, stem)).ToList();

    public static RougeScore SummaryLcs(List<List<string>> targetSents, List<List<string>> predictionSents)
    {
        if (targetSents.Count == 0 || predictionSents.Count == 0) return RougeScore.Zero;
        int m = targetSents.Sum(s => s.Count), n = predictionSents.Sum(s => s.Count);
        if (m == 0 || n == 0) return RougeScore.Zero;

        var targetLeft = CountTokens(targetSents);
        var predictionLeft = CountTokens(predictionSents);
        int hits = 0;
        foreach (var r in targetSents)
        {
            var union = new SortedSet<int>();
            foreach (var c in predictionSents) union.UnionWith(LcsIndices(r, c));
            foreach (var i in union)
            {
                var token = r[i];
                if (predictionLeft.GetValueOrDefault(token) > 0 && targetLeft.GetValueOrDefault(token) > 0)
                {
                    hits++;
                    predictionLeft[token]--;
                    targetLeft[token]--;
                }
            }
        }
        return RougeScore.FromCounts(hits, n, m);
    }

    private static Dictionary<string, int> CountTokens(List<List<string>> sents)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var s in sents)
            foreach (var t in s) counts[t] = counts.GetValueOrDefault(t) + 1;
        return counts;
    }

    // table[i, j] = LCS length of ref[..i] and can[..j]: (|ref|+1, |can|+1).
    private static int[,] LcsTable(IReadOnlyList<string> reference, IReadOnlyList<string> candidate)
    {
        var table = new int[reference.Count + 1, candidate.Count + 1];
        for (int i = 1; i <= reference.Count; i++)
            for (int j = 1; j <= candidate.Count; j++)
                table[i, j] = reference[i - 1] == candidate[j - 1]
                    ? table[i - 1, j - 1] + 1
                    : Math.Max(table[i - 1, j], table[i, j - 1]);
        return table;
    }

    // Positions in reference of one LCS with candidate, read back from the bottom-right corner.
    private static List<int> LcsIndices(IReadOnlyList<string> reference, IReadOnlyList<string> candidate)
    {
        var t = LcsTable(reference, candidate);
        var indices = new List<int>();
        int i = reference.Count, j = candidate.Count;
        while (i > 0 && j > 0)
        {
            if (reference[i - 1] == candidate[j - 1]) { indices.Add(i - 1); i--; j--; }
            else if (t[i, j - 1] > t[i - 1, j]) j--;
            else i--;
        }
        indices.Reverse();
        return indices;
    }
}
