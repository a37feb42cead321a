using InstructTune.Data.Batching;
using InstructTune.Data.Preference;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Peft;
using InstructTune.Training.Config;
using InstructTune.Training.Loop;
using InstructTune.Training.Losses;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Training.Preference;

/// <summary>Per-row completion log-prob sums S and completion token counts n of one batch.</summary>
public sealed record RowLogps(double[] Sums, int[] Tokens);

/// <summary>
/// DPO, IPO, KTO, ORPO and SimPO as a trainer step (<see cref="IStepObjective"/>). Per micro-batch: one forward of
/// the chosen and rejected rows together, the per-token log-probs summed per row (S), the loss and dL/dS in
/// double (<see cref="PreferenceLoss"/>), then backward of Σ_tokens (−dL/dS_row)·CE_token, whose gradient is the
/// loss's. Losses are means over the items of the whole optimizer step (ORPO/SimPO's NLL over its chosen tokens),
/// so gradient accumulation equals one big batch. The reference comes from <see cref="ReferenceLogps"/>.
/// </summary>
public sealed class PreferenceObjective(PreferenceOptions options, PreferenceData data, ReferenceLogps? reference) : IStepObjective
{
    public PreferenceOptions Options => options;

    /// <summary>Σ log p over each row's labelled positions (HF shift), and the per-token CE tensor on the current tape.</summary>
    public static (Tensor TokenLosses, RowLogps Rows) Forward(LlamaModel model, Batch b, bool checkpointLayers = false)
    {
        var output = model.Forward(InstructionObjective.ToModelBatch(b), new LlamaForwardOptions { ReturnLogits = true, CheckpointLayers = checkpointLayers });
        int V = model.Config.VocabSize;
        var targets = LlamaModel.ShiftedTargets(b.Labels, b.B, b.T);
        var losses = Ops.CrossEntropyLosses(Ops.Reshape(output.Logits!, b.B * b.T, V), targets, 0f, out _);   // (B·T)
        var sums = new double[b.B]; var tokens = new int[b.B];
        var l = losses.Span;
        for (int i = 0; i < targets.Length; i++)
            if (targets[i] != CrossEntropyKernel.IgnoreIndex) { sums[i / b.T] -= l[i]; tokens[i / b.T]++; }
        return (losses, new RowLogps(sums, tokens));
    }

    /// <summary>Row log-probs without recording gradients (reference passes, KL rows, evaluation).</summary>
    public static RowLogps Score(LlamaModel model, Batch b)
    {
        using var tape = Tape.Record(recordGrad: false);
        return Forward(model, b).Rows;
    }

    public StepOutcome ForwardBackward(LlamaModel model, IReadOnlyList<Batch> microBatches, bool checkpointLayers)
    {
        var m = new Metrics(options);
        int itemsOfStep = 0, chosenTokensOfStep = 0;
        foreach (var b in microBatches)
        {
            itemsOfStep += data.Paired ? b.B / 2 : b.B;
            if (options.NllWeight > 0) chosenTokensOfStep += CompletionTokens(b, rows: b.B / 2);
        }
        double kl = 0;
        if (options.Objective == TrainingObjective.Kto) kl = m.Kl = KtoKl(model, microBatches);

        double loss = 0; int tokens = 0;
        foreach (var b in microBatches)
        {
            var refRows = options.NeedsReference ? reference!.Rows(model, b, kl: false) : null;
            using var tape = Tape.Record();
            var (tokenLosses, rows) = Forward(model, b, checkpointLayers);
            var dS = new double[b.B];
            loss += Terms(b, rows, refRows, kl, itemsOfStep, chosenTokensOfStep, dS, m);
            // Surrogate Σ_i w_i·CE_i with w_i = −dL/dS_row(i): its gradient by CE_i is dL/dS·dS/dCE (S = −Σ CE).
            var w = new float[b.B * b.T];
            for (int i = 0; i < w.Length; i++) w[i] = (float)-dS[i / b.T];
            tape.Backward(Ops.Sum(Ops.Mul(tokenLosses, Tensor.FromArray(w, w.Length))));
            tokens += b.RealTokens;
        }
        return new StepOutcome(loss, tokens, m.Result());
    }

    /// <summary>The loss of one micro-batch (its share of the step mean) and dL/dS per row into <paramref name="dS"/>.</summary>
    private double Terms(Batch b, RowLogps pol, RowLogps? refRows, double kl, int itemsOfStep, int chosenTokensOfStep, double[] dS, Metrics m)
    {
        double loss = 0;
        if (data.Paired)
        {
            int P = b.B / 2;
            double nllD = PreferenceLoss.NllDerivative(chosenTokensOfStep) * options.NllWeight;
            for (int k = 0; k < P; k++)
            {
                int c = k, r = P + k;
                var t = PreferenceLoss.Pair(options, pol.Sums[c], pol.Sums[r], pol.Tokens[c], pol.Tokens[r],
                    refRows?.Sums[c] ?? 0, refRows?.Sums[r] ?? 0);
                loss += t.Loss / itemsOfStep;
                dS[c] = t.DChosen / itemsOfStep + nllD;
                dS[r] = t.DRejected / itemsOfStep;
                m.AddPair(t, Shown(pol, c), Shown(pol, r));
                if (options.NllWeight > 0) { loss += options.NllWeight * -pol.Sums[c] / chosenTokensOfStep; m.AddNll(-pol.Sums[c], chosenTokensOfStep); }
            }
        }
        else
        {
            for (int k = 0; k < b.B; k++)
            {
                bool desirable = data.Desirable(data.ItemOf(b.ExampleIndices[k][0]));
                var t = PreferenceLoss.Kto(options, pol.Sums[k], refRows!.Sums[k], desirable, kl);
                loss += t.Loss / itemsOfStep;
                dS[k] = t.D / itemsOfStep;
                m.AddUnpaired(t, desirable, pol.Sums[k]);
            }
        }
        return loss;
    }

    /// <summary>The log-prob TRL logs as logps/*: the sum, or the per-token mean for the averaged objectives.</summary>
    private double Shown(RowLogps rows, int r) => options.Averaged ? rows.Sums[r] / rows.Tokens[r] : rows.Sums[r];

    /// <summary>KTO's reference point over the KL rows of the step's items (policy and reference, no gradient).</summary>
    private double KtoKl(LlamaModel model, IReadOnlyList<Batch> microBatches)
    {
        var pol = new List<double>(); var refs = new List<double>();
        foreach (var b in microBatches)
        {
            var klBatch = data.CollateKl(data.ItemsOf(b));
            pol.AddRange(Score(model, klBatch).Sums);
            refs.AddRange(reference!.Rows(model, klBatch, kl: true).Sums);
        }
        return PreferenceLoss.KtoKl(pol, refs);
    }

    private static int CompletionTokens(Batch b, int rows)
    {
        int n = 0;
        for (int r = 0; r < rows; r++)
            for (int t = 1; t < b.T; t++) if (b.Labels[r * b.T + t] != CrossEntropyKernel.IgnoreIndex) n++;
        return n;
    }

    /// <summary>Held-out metrics: mean loss and the logged rewards over every item of <paramref name="eval"/> (no gradients).</summary>
    public static IReadOnlyDictionary<string, double> Evaluate(LlamaModel model, PreferenceOptions options, PreferenceData eval,
        ReferenceLogps? reference, int itemsPerBatch)
    {
        var objective = new PreferenceObjective(options, eval, reference);
        var m = new Metrics(options);
        var batches = new List<Batch>();
        for (int s = 0; s < eval.Count; s += itemsPerBatch)
            batches.Add(eval.Collate(Enumerable.Range(s, Math.Min(itemsPerBatch, eval.Count - s)).ToArray()));
        double kl = options.Objective == TrainingObjective.Kto ? m.Kl = objective.KtoKl(model, batches) : 0;
        int chosenTokens = options.NllWeight > 0 ? batches.Sum(b => CompletionTokens(b, b.B / 2)) : 0;
        double loss = 0;
        foreach (var b in batches)
        {
            var refRows = options.NeedsReference ? reference!.Rows(model, b, kl: false) : null;
            loss += objective.Terms(b, Score(model, b), refRows, kl, eval.Count, chosenTokens, new double[b.B], m);
        }
        var result = new Dictionary<string, double> { ["loss"] = loss };
        foreach (var (k, v) in m.Result()) result[k] = v;
        return result;
    }

    /// <summary>Running sums of TRL's logged metrics over a step.</summary>
    private sealed class Metrics(PreferenceOptions o)
    {
        private double _rc, _rr, _acc, _lc, _lr, _odds, _ratio, _nll;
        private int _nc, _nr, _pairs;
        public double Kl = double.NaN;

        public void AddPair(PairTerms t, double logpChosen, double logpRejected)
        {
            _pairs++; _rc += t.RewardChosen; _rr += t.RewardRejected; _lc += logpChosen; _lr += logpRejected;
            if (t.RewardChosen > t.RewardRejected) _acc++;
            _odds += t.LogOdds; _ratio += t.LogOddsRatio;
        }

        public void AddNll(double negLogp, int tokensOfStep) => _nll += negLogp / tokensOfStep;

        public void AddUnpaired(UnpairedTerms t, bool desirable, double logp)
        {
            if (desirable) { _nc++; _rc += t.Reward; _lc += logp; } else { _nr++; _rr += t.Reward; _lr += logp; }
        }

        public Dictionary<string, double> Result()
        {
            var r = new Dictionary<string, double>();
            if (o.Paired)
            {
                double n = Math.Max(1, _pairs);
                r["rewards/chosen"] = _rc / n; r["rewards/rejected"] = _rr / n;
                r["rewards/accuracies"] = _acc / n; r["rewards/margins"] = (_rc - _rr) / n;
                r["logps/chosen"] = _lc / n; r["logps/rejected"] = _lr / n;
                if (o.Objective == TrainingObjective.Orpo) { r["log_odds_ratio"] = _ratio / n; r["log_odds_chosen"] = _odds / n; }
                if (o.NllWeight > 0) r["nll_loss"] = _nll;
            }
            else
            {
                double rc = _nc == 0 ? 0 : _rc / _nc, rr = _nr == 0 ? 0 : _rr / _nr;
                r["rewards/chosen"] = rc; r["rewards/rejected"] = rr; r["rewards/margins"] = rc - rr;
                r["logps/chosen"] = _nc == 0 ? 0 : _lc / _nc; r["logps/rejected"] = _nr == 0 ? 0 : _lr / _nr;
                r["count/chosen"] = _nc; r["count/rejected"] = _nr;
                r["kl"] = Kl;
            }
            return r;
        }
    }
}

/// <summary>
/// The frozen reference model's row log-probs. LoRA/QLoRA/DoRA/IA3: the same model with every adapter disabled (PEFT's
/// disable_adapter; no second copy of the weights). Precomputed: every sequence scored once before training
/// (required for full fine-tuning, which keeps no copy of its starting weights) and looked up by sequence index.
/// </summary>
public sealed class ReferenceLogps
{
    private readonly double[]? _sequences, _kl;

    private ReferenceLogps(double[]? sequences, double[]? kl) { _sequences = sequences; _kl = kl; }

    /// <summary>Disable the adapters at every call (LoRA/QLoRA).</summary>
    public static ReferenceLogps AdapterDisabled() => new(null, null);

    public bool Precomputed => _sequences != null;
    public IReadOnlyList<double>? SequenceSums => _sequences;
    public IReadOnlyList<double>? KlSums => _kl;

    /// <summary>Scores every sequence (and KL sequence) of <paramref name="data"/> with the model as it is now (adapters disabled).</summary>
    public static ReferenceLogps Precompute(LlamaModel model, PreferenceData data, int rowsPerBatch, Action<int, int>? progress = null)
    {
        double[] Run(IReadOnlyList<Data.Records.TokenizedExample> seqs)
        {
            var sums = new double[seqs.Count];
            for (int s = 0; s < seqs.Count; s += rowsPerBatch)
            {
                var rows = Enumerable.Range(s, Math.Min(rowsPerBatch, seqs.Count - s)).Select(i => new[] { i }).ToArray();
                var b = Collator.Collate(seqs, new PlannedBatch(rows), data.PadId);
                var r = AdapterSwitch.WithAdaptersDisabled(model, () => PreferenceObjective.Score(model, b));
                r.Sums.CopyTo(sums, s);
                progress?.Invoke(Math.Min(s + rowsPerBatch, seqs.Count), seqs.Count);
            }
            return sums;
        }
        return new ReferenceLogps(Run(data.Sequences), data.Paired ? null : Run(data.KlSequences));
    }

    /// <summary>Values read back from a cache file.</summary>
    public static ReferenceLogps FromValues(double[] sequences, double[]? kl) => new(sequences, kl);

    /// <summary>Reference sums of a batch's rows (KL rows when <paramref name="kl"/>), by each row's sequence index.</summary>
    public RowLogps Rows(LlamaModel model, Batch b, bool kl)
    {
        if (_sequences == null) return AdapterSwitch.WithAdaptersDisabled(model, () => PreferenceObjective.Score(model, b));
        var table = kl ? _kl! : _sequences;
        var sums = new double[b.B];
        for (int r = 0; r < b.B; r++) sums[r] = table[b.ExampleIndices[r][0]];
        return new RowLogps(sums, new int[b.B]);
    }
}
