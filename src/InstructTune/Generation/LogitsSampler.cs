// Chooses the next token from one row of logits: logit bias → repetition penalty → presence/frequency penalty →
// temperature → top-k → top-p → sample (the additive OpenAI terms where vLLM applies them: the bias first, the
// penalties after the repetition penalty); temperature 0 is argmax (lowest id on ties).
namespace InstructTune.Generation;

public static class LogitsSampler
{
    /// <summary>Applies the HF repetition penalty in place to every token id in <paramref name="seen"/>.</summary>
    public static void ApplyRepetitionPenalty(Span<float> logits, IEnumerable<int> seen, double penalty)
    {
        if (penalty == 1.0) return;
        foreach (int id in seen.Distinct())
            logits[id] = logits[id] < 0 ? (float)(logits[id] * penalty) : (float)(logits[id] / penalty);
    }

    /// <summary>OpenAI's logit_bias: <c>logits[id] += bias</c> for each entry (ids must be inside the row).</summary>
    public static void ApplyLogitBias(Span<float> logits, IReadOnlyDictionary<int, float>? bias)
    {
        if (bias == null) return;
        foreach (var (id, b) in bias) logits[id] += b;
    }

    /// <summary>
    /// OpenAI's presence and frequency penalties over the tokens generated so far (the prompt does not count, as in
    /// vLLM): <c>logits[j] −= c[j]·frequency + (c[j] &gt; 0)·presence</c>, c[j] = how often token j was generated.
    /// </summary>
    public static void ApplyPresenceFrequencyPenalty(Span<float> logits, IReadOnlyList<int> generated, double presence, double frequency)
    {
        if (presence == 0 && frequency == 0) return;
        var counts = new Dictionary<int, int>();
        foreach (int id in generated) counts[id] = counts.GetValueOrDefault(id) + 1;
        foreach (var (id, c) in counts) logits[id] -= (float)(c * frequency + presence);
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    /// <summary>The probabilities sampling draws from after temperature, top-k and top-p (zeros elsewhere).</summary>
    public static double[] Distribution(ReadOnlySpan<float> logits, double temperature, int topK, double topP)
    {
        int V = logits.Length;
        var order = Enumerable.Range(0, V).ToArray();
        var l = logits.ToArray();
        Array.Sort(order, (a, b) => l[b].CompareTo(l[a]) != 0 ? l[b].CompareTo(l[a]) : a.CompareTo(b));
        int keep = topK > 0 ? Math.Min(topK, V) : V;
        double max = l[order[0]] / temperature;
        var p = new double[V];
        double sum = 0;
        for (int i = 0; i < keep; i++) sum += p[order[i]] = Math.Exp(l[order[i]] / temperature - max);
        if (topP < 1.0)
        {
            // Smallest prefix of the sorted tokens whose mass reaches topP (at least one token).
            double cum = 0;
            int n = 0;
            while (n < keep) { cum += p[order[n]] / sum; n++; if (cum >= topP) break; }
            for (int i = n; i < keep; i++) p[order[i]] = 0;
            keep = n;
        }
        sum = 0;
        for (int i = 0; i < keep; i++) sum += p[order[i]];
        for (int i = 0; i < keep; i++) p[order[i]] /= sum;
        return p;
    }

    public static int Sample(ReadOnlySpan<float> logits, double temperature, int topK, double topP, Random rng)
    {
        if (temperature == 0) return ArgMax(logits);
        var p = Distribution(logits, temperature, topK, topP);
        double u = rng.NextDouble(), cum = 0;
        int last = 0;
        for (int i = 0; i < p.Length; i++)
        {
            if (p[i] == 0) continue;
            cum += p[i];
            last = i;
            if (u < cum) return i;
        }
        return last;
    }
}
