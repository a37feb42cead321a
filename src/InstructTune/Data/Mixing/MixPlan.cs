namespace InstructTune.Data.Mixing;

/// <summary>One dataset as the planner sees it: its stage, size, cap, weight, whether it is plain pre-training text
/// mixed at the token ratio, and the token length of each example (for that ratio).</summary>
public sealed record PlanSource(string Name, int Stage, IReadOnlyList<int> Lengths, int Cap = 0, double Weight = 1, bool PlainText = false)
{
    public int Count => Lengths.Count;
}

/// <summary>Per-stage settings: passes over the stage's mixture and the share of replayed earlier-stage examples.</summary>
public sealed record PlanStage(int Epochs, double Replay);

/// <summary>The examples of one stage: (source index, example index) draws, with repeats; <see cref="Trivial"/> when the
/// stage is one whole dataset used as is (the sampler then makes <see cref="Epochs"/> passes with a fresh order each).</summary>
/// <param name="Members">Sources mixed by rate in this stage (task datasets, or its plain ones when it has no other), with <paramref name="Rates"/>.</param>
public sealed record StagePlan(int Stage, IReadOnlyList<(int Source, int Index)> Draws, bool Trivial, int Epochs, IReadOnlyList<int> Members, IReadOnlyList<double> Rates);

/// <summary>
/// The training mixture of a run (recipe keys <c>data.datasets</c>, <c>data.mixing</c>, <c>data.temperature</c>,
/// <c>data.pretrain_ratio</c>, <c>data.stages</c>). For stage s with task datasets i (n_i examples, cap c_i, ∞ when 0):
/// <list type="bullet">
/// <item>rates r_i ∝ min(n_i, c_i) (proportional), ∝ min(n_i, c_i)^(1/T) (temperature), ∝ w_i (weights);</item>
/// <item>the stage draws E_s · N_s examples, N_s = Σ_i min(n_i, c_i) (one "epoch" of the mixture), each draw from
/// dataset i with probability r_i — so over an epoch the count of dataset i is Binomial(N_s, r_i), mean N_s·r_i;</item>
/// <item>with replay ρ_s (s &gt; 1) each draw instead comes, with probability ρ_s, from an earlier stage (uniformly among
/// them, then by that stage's rates);</item>
/// <item>plain-text datasets (pre-training text at ratio p &gt; 0) are then added until their tokens are p of the
/// stage's tokens: plain / (plain + task) ≈ p.</item>
/// </list>
/// Within a dataset, examples are drawn without replacement in a seeded order that reshuffles when exhausted, so a
/// capped dataset shows different examples across epochs. A stage that is one whole dataset (no cap, replay or plain
/// text) is used as is. Deterministic given the seed.
/// </summary>
public static class MixPlan
{
    public static List<StagePlan> Build(IReadOnlyList<PlanSource> sources, MixStrategy strategy, double temperature, double plainRatio,
        IReadOnlyList<PlanStage> stages, int seed)
    {
        var stageNumbers = sources.Select(s => s.Stage).Distinct().Order().ToList();
        var cursors = sources.Select((s, i) => new Mixture.Cycler(s.Count, Common.StableHash.Combine(seed, i, s.Name))).ToArray();
        var rng = new Random(Common.StableHash.Combine(seed, 0x313A, 7));
        var plans = new List<StagePlan>();
        var ratesByStage = new List<(int[] Members, double[] Rates)>();
        for (int k = 0; k < stageNumbers.Count; k++)
        {
            int stage = stageNumbers[k];
            var settings = k < stages.Count ? stages[k] : new PlanStage(1, 0);
            var task = Enumerable.Range(0, sources.Count).Where(i => sources[i].Stage == stage && !sources[i].PlainText).ToArray();
            var plain = Enumerable.Range(0, sources.Count).Where(i => sources[i].Stage == stage && sources[i].PlainText).ToArray();
            var members = task.Length > 0 ? task : plain;   // a stage of plain text only mixes it like task data
            var rates = Mixture.Rates(members.Select(i => new MixSource(sources[i].Name, sources[i].Count, sources[i].Weight, false, sources[i].Cap)).ToList(),
                strategy, int.MaxValue, temperature);
            ratesByStage.Add((members, rates));
            bool noCap = members.Length == 1 && (sources[members[0]].Cap <= 0 || sources[members[0]].Cap >= sources[members[0]].Count);
            if (noCap && (k == 0 || settings.Replay <= 0) && (task.Length == 0 || plain.Length == 0 || plainRatio <= 0))
            {
                plans.Add(new StagePlan(stage, Enumerable.Range(0, sources[members[0]].Count).Select(x => (members[0], x)).ToList(), true, settings.Epochs, members, rates));
                continue;
            }
            long epochSize = members.Sum(i => (long)(sources[i].Cap > 0 ? Math.Min(sources[i].Count, sources[i].Cap) : sources[i].Count));
            long total = epochSize * Math.Max(1, settings.Epochs);
            var draws = new List<(int, int)>((int)Math.Min(int.MaxValue, total));
            long taskTokens = 0;
            for (long n = 0; n < total; n++)
            {
                var (m, r) = k > 0 && settings.Replay > 0 && rng.NextDouble() < settings.Replay ? ratesByStage[rng.Next(k)] : (members, rates);
                int src = m[Pick(r, rng)];
                int index = cursors[src].Next();
                draws.Add((src, index));
                taskTokens += sources[src].Lengths[index];
            }
            if (task.Length > 0 && plain.Length > 0 && plainRatio > 0)
            {
                var plainRates = Mixture.Rates(plain.Select(i => new MixSource(sources[i].Name, sources[i].Count, sources[i].Weight, false, sources[i].Cap)).ToList(),
                    strategy, int.MaxValue, temperature);
                // plain / (plain + task) = p  ⇔  plain = task · p / (1 − p); stop at the draw that comes closest.
                double target = taskTokens * plainRatio / (1 - plainRatio);
                long plainTokens = 0;
                while (plainTokens < target)
                {
                    int src = plain[Pick(plainRates, rng)];
                    int index = cursors[src].Next();
                    int len = sources[src].Lengths[index];
                    if (plainTokens + len - target > target - plainTokens) break;
                    draws.Add((src, index));
                    plainTokens += len;
                }
            }
            plans.Add(new StagePlan(stage, draws, false, 1, members, rates));
        }
        return plans;
    }

    private static int Pick(IReadOnlyList<double> rates, Random rng)
    {
        double u = rng.NextDouble(), acc = 0;
        for (int i = 0; i < rates.Count; i++) if (u < (acc += rates[i])) return i;
        return rates.Count - 1;
    }
}
