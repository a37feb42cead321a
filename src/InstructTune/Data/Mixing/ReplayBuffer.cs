namespace InstructTune.Data.Mixing;

/// <summary>How the replay buffer keeps earlier stages' examples (data.replay_buffer.sampling).</summary>
public enum ReplaySampling
{
    /// <summary>One reservoir over every earlier stage's stream of examples (Vitter's Algorithm R): a uniform sample.</summary>
    Reservoir,
    /// <summary>One reservoir per dataset (task), the capacity split equally among the datasets seen so far.</summary>
    Stratified,
}

/// <summary>The buffer's capacity: <paramref name="Size"/> examples, or <paramref name="Fraction"/> of the earlier stages' own examples.</summary>
public sealed record ReplaySettings(int Size, double Fraction, ReplaySampling Sampling, int Seed);

/// <summary>
/// A replay buffer of earlier stages' examples (recipe key <c>data.replay_buffer</c>). Without it, stage k's replayed share
/// (<c>data.stages[k].replay</c>, <see cref="MixPlan"/>) is drawn from the earlier stages' whole mixtures; with it, each of
/// those draws is instead a uniform pick from the buffer as it stands when stage k starts — so the share stays ρ_k and
/// only what the buffer kept can come back. The buffer sees every stage's own draws (its task datasets, not plain text and
/// not its replayed draws) in order, after the stage:
/// <list type="bullet">
/// <item>reservoir: item t (0-based) of the stream enters while t &lt; C, else replaces slot j = U{0..t} when j &lt; C
/// (Algorithm R, Vitter 1985): every item seen has probability C/(t+1) of being in the buffer;</item>
/// <item>stratified: one such reservoir per dataset, each of capacity ⌊C / datasets seen⌋ (a reservoir over capacity when a
/// new dataset arrives drops uniformly chosen items, which keeps it a uniform sample);</item>
/// <item>C = size, or ⌈fraction × own draws seen so far⌉ recomputed at each stage end (a fraction only grows the buffer).</item>
/// </list>
/// Deterministic given the seed; the buffers are written to the data folder (replay_buffer.json) with the prepared stages.
/// </summary>
public static class ReplayBuffer
{
    /// <summary>Rewrites the replayed draws of every stage; returns the new plans and the buffer each stage drew from (empty for stage 1).</summary>
    public static (List<StagePlan> Plans, List<List<(int Source, int Index)>> Buffers) Apply(IReadOnlyList<StagePlan> plans,
        IReadOnlyList<PlanSource> sources, ReplaySettings settings)
    {
        var rng = new Random(Common.StableHash.Combine(settings.Seed, 0x5245504C, 3));
        var reservoirs = new Dictionary<int, (List<(int, int)> Items, long Seen)>();   // key: dataset (stratified) or 0
        long ownSeen = 0;
        var result = new List<StagePlan>();
        var buffers = new List<List<(int, int)>>();
        foreach (var plan in plans)
        {
            var buffer = reservoirs.OrderBy(r => r.Key).SelectMany(r => r.Value.Items).ToList();
            buffers.Add(buffer);
            bool IsReplay((int Source, int Index) d) => sources[d.Source].Stage != plan.Stage;
            var draws = plan.Draws.Select(d => IsReplay(d) && buffer.Count > 0 ? buffer[rng.Next(buffer.Count)] : d).ToList();
            result.Add(plan with { Draws = draws });

            // After the stage: its own examples stream into the buffer (a trivial plan's passes are the same list, once).
            var own = plan.Draws.Where(d => !IsReplay(d) && !sources[d.Source].PlainText).ToList();
            ownSeen += own.Count;
            long capacity = settings.Size > 0 ? settings.Size : (long)Math.Ceiling(settings.Fraction * ownSeen);
            foreach (var d in own)
            {
                int key = settings.Sampling == ReplaySampling.Stratified ? d.Source : 0;
                if (!reservoirs.TryGetValue(key, out var r)) reservoirs[key] = r = (new List<(int, int)>(), 0L);
                long cap = settings.Sampling == ReplaySampling.Stratified ? capacity / Math.Max(1, reservoirs.Count) : capacity;
                if (r.Items.Count < cap) r.Items.Add(d);
                else if (cap > 0)
                {
                    long j = rng.NextInt64(r.Seen + 1);
                    if (j < cap) r.Items[(int)j] = d;
                }
                reservoirs[key] = (r.Items, r.Seen + 1);
            }
            // Stratified: every dataset's reservoir down to the equal share of the capacity.
            if (settings.Sampling == ReplaySampling.Stratified)
            {
                long share = capacity / Math.Max(1, reservoirs.Count);
                foreach (var (_, r) in reservoirs)
                    while (r.Items.Count > share) r.Items.RemoveAt(rng.Next(r.Items.Count));
            }
        }
        return (result, buffers);
    }
}
