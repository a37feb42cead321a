namespace InstructTune.Evaluation.Metrics;

/// <summary>Sufficient statistics of BLEU for one segment or a whole corpus (orders 1..4).</summary>
public sealed class BleuStats
{
    public const int MaxOrder = 4;
    public long SysLen, RefLen;
    public readonly long[] Correct = new long[MaxOrder], Total = new long[MaxOrder];

    public void Add(BleuStats other)
    {
        SysLen += other.SysLen;
        RefLen += other.RefLen;
        for (int n = 0; n < MaxOrder; n++) { Correct[n] += other.Correct[n]; Total[n] += other.Total[n]; }
    }
}

/// <summary>A BLEU score (0–100) with the pieces sacreBLEU reports beside it.</summary>
public readonly record struct BleuScore(double Score, double[] Precisions, double BrevityPenalty, long SysLen, long RefLen);

/// <summary>
/// BLEU exactly as sacreBLEU 2.x computes it with its defaults: 13a tokenization, case kept, hypothesis and
/// references right-stripped, up to 4-grams, reference n-gram counts clipped by the max over references, the
/// closest reference length (ties → shorter), "exp" smoothing (the k-th zero-match order counts as
/// 1/(2^k · total)). Corpus BLEU sums the statistics of all segments and uses all 4 orders; sentence BLEU uses
/// the effective order (orders with no hypothesis n-grams are left out of the geometric mean). No match at all
/// gives 0, as sacreBLEU does since its issue #141.
/// </summary>
public static class Bleu
{
    /// <summary>Statistics of one hypothesis against its references (raw strings; tokenized here).</summary>
    public static BleuStats SegmentStats(string hypothesis, IReadOnlyList<string> references)
    {
        var hyp = PythonText.Split(Tokenizer13a.Tokenize(PythonText.RStrip(hypothesis)));
        var refs = references.Select(r => PythonText.Split(Tokenizer13a.Tokenize(PythonText.RStrip(r)))).ToList();
        return TokenStats(hyp, refs);
    }

    /// <summary>Statistics of already tokenized text.</summary>
    public static BleuStats TokenStats(IReadOnlyList<string> hyp, IReadOnlyList<IReadOnlyList<string>> refs)
    {
        var stats = new BleuStats { SysLen = hyp.Count, RefLen = ClosestRefLength(hyp.Count, refs.Select(r => r.Count)) };
        for (int n = 1; n <= BleuStats.MaxOrder; n++)
        {
            var maxRef = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var r in refs)
                foreach (var (gram, count) in NGramCounter.Count(r, n))
                    maxRef[gram] = Math.Max(maxRef.GetValueOrDefault(gram), count);
            foreach (var (gram, count) in NGramCounter.Count(hyp, n))
            {
                stats.Total[n - 1] += count;
                if (maxRef.TryGetValue(gram, out var rc)) stats.Correct[n - 1] += Math.Min(count, rc);
            }
        }
        return stats;
    }

    // sacreBLEU keeps the first length at the smallest distance unless a later one is as close and shorter.
    private static long ClosestRefLength(int hypLen, IEnumerable<int> refLens)
    {
        long bestDiff = -1, best = -1;
        foreach (var len in refLens)
        {
            long diff = Math.Abs(hypLen - len);
            if (bestDiff == -1 || diff < bestDiff) { bestDiff = diff; best = len; }
            else if (diff == bestDiff && len < best) best = len;
        }
        return best;
    }

    /// <summary>Sentence BLEU with sacreBLEU's sentence defaults (exp smoothing, effective order).</summary>
    public static BleuScore Sentence(string hypothesis, IReadOnlyList<string> references) =>
        Compute(SegmentStats(hypothesis, references), effectiveOrder: true);

    /// <summary>Corpus BLEU: <paramref name="references"/>[i] are the references of hypotheses[i].</summary>
    public static BleuScore Corpus(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> references)
    {
        if (hypotheses.Count != references.Count)
            throw new ArgumentException($"{hypotheses.Count} hypotheses but {references.Count} reference lists");
        var total = new BleuStats();
        for (int i = 0; i < hypotheses.Count; i++) total.Add(SegmentStats(hypotheses[i], references[i]));
        return Compute(total, effectiveOrder: false);
    }

    /// <summary>sacreBLEU's compute_bleu with smooth_method "exp".</summary>
    public static BleuScore Compute(BleuStats s, bool effectiveOrder)
    {
        double bp = s.SysLen < s.RefLen ? (s.SysLen > 0 ? Math.Exp(1 - (double)s.RefLen / s.SysLen) : 0.0) : 1.0;
        var precisions = new double[BleuStats.MaxOrder];
        if (s.Correct.All(c => c == 0)) return new BleuScore(0, precisions, bp, s.SysLen, s.RefLen);

        double smooth = 1;
        int effOrder = BleuStats.MaxOrder;
        for (int n = 1; n <= BleuStats.MaxOrder; n++)
        {
            if (s.Total[n - 1] == 0) break;
            if (effectiveOrder) effOrder = n;
            if (s.Correct[n - 1] == 0)
            {
                smooth *= 2;
                precisions[n - 1] = 100.0 / (smooth * s.Total[n - 1]);
            }
            else precisions[n - 1] = 100.0 * s.Correct[n - 1] / s.Total[n - 1];
        }
        double logSum = 0;
        for (int n = 0; n < effOrder; n++) logSum += precisions[n] == 0 ? -9999999999 : Math.Log(precisions[n]);
        return new BleuScore(bp * Math.Exp(logSum / effOrder), precisions, bp, s.SysLen, s.RefLen);
    }
}
