using InstructTune.Data.Batching;
using InstructTune.Data.Records;

namespace InstructTune.Tests.Data;

/// <summary>
/// Packing is exact: per-example losses of a packed batch equal those of each example run alone. The model here
/// is a tiny single-layer causal transformer written out in the test (embedding, rotary attention at the batch's
/// position ids under the batch's mask, output projection, shifted cross-entropy over labels ≠ −100); it stands in
/// for LlamaModel until the engine and models branches land. The control case shows the test can fail: with a
/// plain causal mask (no document boundaries) the losses differ. (Rotary attention depends only on relative
/// positions, so restarting position ids is checked directly rather than through the loss.)
/// </summary>
public class PackingExactnessTests
{
    private const int V = 40, C = 8;

    private sealed class TinyModel
    {
        public readonly double[] Emb, Wq, Wk, Wv, Wo;

        public TinyModel(int seed)
        {
            var rng = new Random(seed);
            double[] Init(int n) => Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
            Emb = Init(V * C); Wq = Init(C * C); Wk = Init(C * C); Wv = Init(C * C); Wo = Init(C * V);
        }

        /// <summary>Sum of cross-entropy per document of row b, and its learned-token count.</summary>
        public Dictionary<int, (double Sum, int Count)> DocLosses(Batch batch, int b, Func<int, int, bool> attends, Func<int, int> position)
        {
            int T = batch.T;
            var q = new double[T, C]; var k = new double[T, C]; var v = new double[T, C];
            for (int t = 0; t < T; t++)
            {
                var x = new double[C];
                for (int c = 0; c < C; c++) x[c] = Emb[batch.Ids[b * T + t] * C + c];
                for (int o = 0; o < C; o++)
                    for (int c = 0; c < C; c++) { q[t, o] += x[c] * Wq[c * C + o]; k[t, o] += x[c] * Wk[c * C + o]; v[t, o] += x[c] * Wv[c * C + o]; }
                Rope(q, t, position(t)); Rope(k, t, position(t));
            }
            var result = new Dictionary<int, (double, int)>();
            for (int t = 0; t + 1 < T; t++)
            {
                int target = batch.Labels[b * T + t + 1];
                if (target == TokenizedExample.IgnoreIndex) continue;
                // attention of query t over allowed keys
                var scores = new List<(int J, double S)>();
                for (int j = 0; j < T; j++)
                    if (attends(t, j)) { double s = 0; for (int c = 0; c < C; c++) s += q[t, c] * k[j, c]; scores.Add((j, s / Math.Sqrt(C))); }
                double max = scores.Max(p => p.S), z = scores.Sum(p => Math.Exp(p.S - max));
                var h = new double[C];
                foreach (var (j, s) in scores) for (int c = 0; c < C; c++) h[c] += Math.Exp(s - max) / z * v[j, c];
                var logits = new double[V];
                for (int o = 0; o < V; o++) for (int c = 0; c < C; c++) logits[o] += h[c] * Wo[c * V + o];
                double lmax = logits.Max(), lz = logits.Sum(l => Math.Exp(l - lmax));
                double loss = -(logits[target] - lmax - Math.Log(lz));
                int doc = batch.DocumentIds[b * T + t + 1];
                var (sum, count) = result.GetValueOrDefault(doc);
                result[doc] = (sum + loss, count + 1);
            }
            return result;
        }

        private static void Rope(double[,] x, int t, int p)
        {
            for (int i = 0; i < C / 2; i++)
            {
                double theta = p * Math.Pow(10000, -2.0 * i / C), cos = Math.Cos(theta), sin = Math.Sin(theta);
                double a = x[t, i], bb = x[t, i + C / 2];
                x[t, i] = a * cos - bb * sin;
                x[t, i + C / 2] = bb * cos + a * sin;
            }
        }
    }

    private static List<TokenizedExample> Examples(int seed)
    {
        var rng = new Random(seed);
        var list = new List<TokenizedExample>();
        foreach (var len in new[] { 7, 12, 5, 9, 3, 14, 6 })
        {
            var ids = Enumerable.Range(0, len).Select(_ => rng.Next(3, V)).ToArray();
            ids[0] = 1;
            int prompt = len / 2;
            var labels = ids.Select((id, i) => i >= prompt ? id : TokenizedExample.IgnoreIndex).ToArray();
            list.Add(new TokenizedExample(ids, labels, new byte[len], list.Count % 3, 0));
        }
        return list;
    }

    [Fact]
    public void PackedPerExampleLossesEqualAlone()
    {
        var examples = Examples(1);
        var model = new TinyModel(2);
        var plan = BatchPlanner.Plan(examples.Select(e => e.Length).ToArray(), new BatchOptions(BatchMode.Packed, BatchSize: 4, SeqLen: 20), seed: 3, epoch: 0);
        Assert.True(plan.Sum(p => p.Rows.Sum(r => r.Length)) == examples.Count);
        Assert.Contains(plan, p => p.Rows.Any(r => r.Length >= 2));   // at least one row really is packed
        int compared = 0;
        foreach (var planned in plan)
        {
            var batch = Collator.Collate(examples, planned, padId: 0, fixedWidth: 20);
            for (int b = 0; b < batch.B; b++)
            {
                var packed = model.DocLosses(batch, b, (i, j) => batch.Attends(b, i, j), t => batch.PositionIds[b * batch.T + t]);
                var leaky = model.DocLosses(batch, b, (i, j) => j <= i && batch.DocumentIds[b * batch.T + j] >= 0, t => batch.PositionIds[b * batch.T + t]);
                for (int d = 0; d < planned.Rows[b].Length; d++)
                {
                    var alone = Collator.Collate(examples, new PlannedBatch([[planned.Rows[b][d]]]), padId: 0);
                    var single = model.DocLosses(alone, 0, (i, j) => alone.Attends(0, i, j), t => alone.PositionIds[t])[0];
                    Assert.Equal(single.Count, packed[d].Count);
                    Assert.Equal(alone.PositionIds, batch.PositionIds.Where((_, t) => t / batch.T == b && batch.DocumentIds[t] == d));
                    Assert.Equal(single.Sum, packed[d].Sum, 1e-12);
                    if (d > 0)
                    {
                        Assert.NotEqual(single.Sum, leaky[d].Sum, 1e-6);
                    }
                    compared++;
                }
            }
        }
        Assert.Equal(examples.Count, compared);
    }

    [Fact]
    public void SamplerResumesWithTheSameBatches()
    {
        var examples = Examples(5).Concat(Examples(6)).Concat(Examples(7)).ToList();
        foreach (var mode in Enum.GetValues<BatchMode>())
        {
            var options = new BatchOptions(mode, BatchSize: 3, SeqLen: 20, TokenBudget: 30, BucketWindow: 2);
            var a = new DataSampler(examples, options, padId: 0, seed: 11);
            var straight = Enumerable.Range(0, 17).Select(_ => a.Next()).ToList();
            var b = new DataSampler(examples, options, padId: 0, seed: 11);
            for (int i = 0; i < 9; i++) b.Next();
            var state = b.State;
            var c = new DataSampler(examples, options, padId: 0, seed: 11);
            c.Restore(state);
            for (int i = 9; i < 17; i++)
            {
                var next = c.Next();
                Assert.Equal(straight[i].Ids, next.Ids);
                Assert.Equal(straight[i].PositionIds, next.PositionIds);
            }
            // Every example appears exactly once per epoch.
            var d = new DataSampler(examples, options, padId: 0, seed: 11);
            var seen = Enumerable.Range(0, d.BatchesPerEpoch).SelectMany(_ => d.Next().ExampleIndices.SelectMany(r => r)).Order().ToList();
            Assert.Equal(Enumerable.Range(0, examples.Count), seen);
        }
    }

    [Fact]
    public void TokenBudgetBatchesHoldMoreShortRowsThanLongOnes()
    {
        var lengths = Enumerable.Range(0, 400).Select(i => i % 2 == 0 ? 10 : 100).ToArray();
        var plan = BatchPlanner.Plan(lengths, new BatchOptions(BatchMode.TokenBudget, BatchSize: 8, TokenBudget: 400, BucketWindow: 50), 1, 0);
        Assert.All(plan, p => Assert.True(p.Rows.Length * p.Rows.Max(r => lengths[r[0]]) <= 400));
        Assert.Contains(plan, p => p.Rows.Length == 40);
        Assert.Contains(plan, p => p.Rows.Length == 4);
        var plain = BatchPlanner.PaddingShare(lengths, BatchPlanner.Plan(lengths, new BatchOptions(BatchMode.Plain, 8), 1, 0), new BatchOptions(BatchMode.Plain, 8));
        var bucketed = BatchPlanner.PaddingShare(lengths, BatchPlanner.Plan(lengths, new BatchOptions(BatchMode.Bucketed, 8), 1, 0), new BatchOptions(BatchMode.Bucketed, 8));
        Assert.True(plain > 0.3 && bucketed < 0.01, $"plain {plain}, bucketed {bucketed}");
    }
}
