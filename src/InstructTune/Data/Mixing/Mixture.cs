namespace InstructTune.Data.Mixing;

/// <summary>How per-dataset sampling rates are set.</summary>
public enum MixStrategy
{
    /// <summary>Rates proportional to the given weights.</summary>
    Weights,
    /// <summary>Rates ∝ min(n, cap) (T5/FLAN examples-proportional mixing; FLAN caps at 3,000).</summary>
    ExamplesProportional,
    /// <summary>Rates ∝ min(n, cap)^(1/T) (temperature-scaled mixing; T = 1 is examples-proportional, T → ∞ uniform).</summary>
    Temperature,
}

/// <summary>One dataset in a mixture: its size, its weight (for <see cref="MixStrategy.Weights"/>), and whether it
/// is plain pre-training text (which takes a fixed share of the mixture, not a computed rate). <c>Cap</c> &gt; 0 caps this
/// source's count in the rate formula (instead of the mixture-wide cap).</summary>
public sealed record MixSource(string Name, int Count, double Weight = 1, bool PlainText = false, int Cap = 0);

/// <summary>
/// Mixing rates and seeded mixed orders. Plain-text sources share <c>plainTextRatio</c> of the mixture (split by
/// weight); task sources share the rest by the strategy. Within a source, examples are drawn without replacement
/// in a seeded order, restarting with a fresh order once exhausted.
/// </summary>
public static class Mixture
{
    public static double[] Rates(IReadOnlyList<MixSource> sources, MixStrategy strategy, int cap = 3000, double temperature = 1, double plainTextRatio = 0)
    {
        var raw = sources.Select(s => s.PlainText ? 0 : strategy switch
        {
            MixStrategy.Weights => s.Weight,
            MixStrategy.ExamplesProportional => Math.Min(s.Count, s.Cap > 0 ? s.Cap : cap),
            _ => Math.Pow(Math.Min(s.Count, s.Cap > 0 ? s.Cap : cap), 1.0 / temperature),
        }).ToArray();
        var plainWeights = sources.Select(s => s.PlainText ? s.Weight : 0).ToArray();
        double taskSum = raw.Sum(), plainSum = plainWeights.Sum();
        if (plainSum == 0) plainTextRatio = 0;
        if (taskSum == 0) plainTextRatio = plainSum > 0 ? 1 : throw new ArgumentException("no source has a positive rate");
        return sources.Select((s, i) => s.PlainText ? plainTextRatio * plainWeights[i] / plainSum : (1 - plainTextRatio) * raw[i] / taskSum).ToArray();
    }

    /// <summary>A mixed order of <c>total</c> (source, example index) draws at the given rates.</summary>
    public static List<(int Source, int Index)> Sample(IReadOnlyList<MixSource> sources, IReadOnlyList<double> rates, int total, int seed)
    {
        var rng = new Random(seed);
        var cursors = sources.Select(s => new Cycler(s.Count, rng.Next())).ToArray();
        var cumulative = new double[rates.Count];
        double acc = 0;
        for (int i = 0; i < rates.Count; i++) cumulative[i] = acc += rates[i];
        var result = new List<(int, int)>(total);
        for (int n = 0; n < total; n++)
        {
            double u = rng.NextDouble() * acc;
            int s = Array.FindIndex(cumulative, c => u < c);
            if (s < 0) s = rates.Count - 1;
            result.Add((s, cursors[s].Next()));
        }
        return result;
    }

    /// <summary>Seeded without-replacement order over 0..n−1 that reshuffles when exhausted.</summary>
    internal sealed class Cycler(int n, int seed)
    {
        private readonly Random _rng = new(seed);
        private int[] _order = [];
        private int _pos;

        public int Next()
        {
            if (n <= 0) throw new InvalidOperationException("cannot draw from an empty source");
            if (_pos == _order.Length)
            {
                _order = Enumerable.Range(0, n).ToArray();
                _rng.Shuffle(_order);
                _pos = 0;
            }
            return _order[_pos++];
        }
    }
}

/// <summary>One training stage: its sources, their rates and how many examples it draws.</summary>
public sealed record Stage(string Name, IReadOnlyList<MixSource> Sources, IReadOnlyList<double> Rates, int Examples);

/// <summary>
/// Multi-stage schedules (e.g. stage 1 task-formatted, stage 2 chat): stage s draws (1 − replay) of its examples
/// from its own mixture and <c>replay</c> from the earlier stages' mixtures (uniformly over earlier stages), so
/// earlier skills are rehearsed. Deterministic given the seed.
/// </summary>
public static class StageSchedule
{
    public static List<(int Stage, int Source, int Index)> Build(IReadOnlyList<Stage> stages, double replay, int seed)
    {
        var result = new List<(int, int, int)>();
        var rng = new Random(seed);
        var cyclers = stages.Select((st, i) => st.Sources.Select(s => new Mixture.Cycler(s.Count, InstructTune.Common.StableHash.Combine(seed, i, s.Name))).ToArray()).ToArray();
        for (int s = 0; s < stages.Count; s++)
        {
            for (int n = 0; n < stages[s].Examples; n++)
            {
                int from = s > 0 && rng.NextDouble() < replay ? rng.Next(s) : s;
                int src = Pick(stages[from].Rates, rng);
                result.Add((from, src, cyclers[from][src].Next()));
            }
        }
        return result;
    }

    private static int Pick(IReadOnlyList<double> rates, Random rng)
    {
        double u = rng.NextDouble() * rates.Sum(), acc = 0;
        for (int i = 0; i < rates.Count; i++) if (u < (acc += rates[i])) return i;
        return rates.Count - 1;
    }
}

/// <summary>
/// Per-complexity balancing: draws <c>total</c> example indices so each complexity level present is equally
/// represented (levels are picked round-robin; examples within a level cycle in a seeded order, so a rare level
/// is up-sampled and a common one down-sampled).
/// </summary>
public static class ComplexityBalancer
{
    public static List<int> Balance(IReadOnlyList<int> levels, int total, int seed)
    {
        var byLevel = levels.Select((l, i) => (l, i)).GroupBy(p => p.l).OrderBy(g => g.Key).Select(g => g.Select(p => p.i).ToArray()).ToArray();
        var rng = new Random(seed);
        var cyclers = byLevel.Select(g => new Mixture.Cycler(g.Length, rng.Next())).ToArray();
        var result = new List<int>(total);
        for (int n = 0; n < total; n++)
        {
            int level = n % byLevel.Length;
            result.Add(byLevel[level][cyclers[level].Next()]);
        }
        var order = result.ToArray();
        rng.Shuffle(order);
        return [.. order];
    }
}
