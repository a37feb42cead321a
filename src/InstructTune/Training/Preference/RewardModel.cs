// The reward model (training.objective: reward): a scalar value head on the causal LM's final hidden state, trained
// on (prompt, chosen, rejected) pairs with the Bradley–Terry loss of TRL's RewardTrainer:
//
//   h_i   = norm(x)[last real token of row i]            (hidden)   the final-norm hidden state (HF: hidden_states[-1])
//   r_i   = score.weight · h_i                            scalar     score = Linear(hidden, 1, bias=False), as
//                                                                    LlamaForSequenceClassification's `score`
//   L     = mean_k −log σ(r_chosen,k − r_rejected,k − m_k)  (TRL: −logsigmoid(rewards_chosen − rewards_rejected
//                                                          [− margin]).mean(); m_k = the pair's `margin` column, 0 without)
//         + c · mean_k (r_chosen,k + r_rejected,k)²        (TRL's center_rewards_coefficient c; 0 = off)
//
// "Last real token" is the last position of the row that is not padding (the collator's document id ≥ 0): HF pools
// at the last token that is not pad_token_id, the same position when padding is on the right and the pad id is not
// the sequence's own EOS. The loss and dL/dr are computed in double; backward runs Σ_i (dL/dr_i)·r_i through the
// tape, whose gradient is the loss's. Means are over the pairs of the whole optimizer step, so gradient
// accumulation equals one big batch.
//
// Saved layout (docs/PREFERENCE.md "Reward model"): reward_head.safetensors beside the exported model or adapter,
// one float32 tensor "score.weight" (1, hidden) — the name and shape of HF's LlamaForSequenceClassification head —
// and metadata {"format":"pt","instructtune":"reward_head","pooling":"last_non_pad_token"}.
using InstructTune.Checkpoints;
using InstructTune.Data.Batching;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Training.Loop;
using InstructTune.Training.Losses;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Training.Preference;

/// <summary>The scalar value head, <c>score.weight</c> (1, hidden).</summary>
public sealed class RewardHead
{
    public const string FileName = "reward_head.safetensors";
    public const string TensorName = "score.weight";

    public Parameter Weight { get; }

    public RewardHead(Parameter weight)
    {
        if (weight.Rank != 2 || weight.Shape[0] != 1) throw new ArgumentException($"reward head: score.weight must be (1, hidden), got {Tensor.ShapeString(weight.Shape)}");
        Weight = weight;
    }

    /// <summary>Normal(0, 0.02) initialisation (HF's initializer_range for a new Linear), seeded.</summary>
    public static RewardHead Create(int hidden, ulong seed)
    {
        var w = new Parameter(1, hidden);
        new Rng(seed ^ 0x5245574152440000UL).Normal(w.Span, 0, 0.02f);
        return new RewardHead(w);
    }

    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        SafetensorsWriter.Write(Path.Combine(dir, FileName),
            [TensorToWrite.FromF32(TensorName, DType.F32, [1, Weight.Shape[1]], Weight.Span.ToArray())],
            new Dictionary<string, string> { ["instructtune"] = "reward_head", ["pooling"] = "last_non_pad_token" });
    }

    /// <summary>Reads <c>dir/reward_head.safetensors</c>; the hidden size must be the model's.</summary>
    public static RewardHead Load(string dir, int hidden)
    {
        var path = Path.Combine(dir, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no reward head here (written by a run with training.objective: reward)", path);
        using var f = SafetensorsFile.Open(path);
        if (!f.Contains(TensorName)) throw new InvalidDataException($"{path}: tensor \"{TensorName}\" is missing");
        var info = f.Info(TensorName);
        if (info.Shape.Length != 2 || info.Shape[0] != 1 || info.Shape[1] != hidden)
            throw new InvalidDataException($"{path}: \"{TensorName}\" has shape [{string.Join(", ", info.Shape)}], the model needs [1, {hidden}]");
        return new RewardHead(new Parameter(f.ReadF32(TensorName), 1, hidden));
    }
}

/// <summary>Bradley–Terry training of <see cref="RewardHead"/> over the model (see the file header); the per-pair
/// margins of <paramref name="data"/> (the data the training batches come from) enter the loss when it has them.</summary>
public sealed class RewardObjective(RewardHead head, double centerRewardsCoefficient, Data.Preference.PreferenceData? data = null) : IStepObjective
{
    public RewardHead Head => head;

    /// <summary>Per-row rewards (B, 1) on the current tape and their values.</summary>
    public static (Tensor Rewards, double[] Values) Forward(LlamaModel model, RewardHead head, Batch b, bool checkpointLayers = false)
    {
        var output = model.Forward(InstructionObjective.ToModelBatch(b), new LlamaForwardOptions { HiddenOnly = true, CheckpointLayers = checkpointLayers });
        var h = Ops.GatherRows(output.Hidden!, LastRealTokens(b));     // (B, hidden)
        var r = Ops.Linear(h, head.Weight);                              // (B, 1)
        var values = new double[b.B];
        for (int i = 0; i < b.B; i++) values[i] = r.Span[i];
        return (r, values);
    }

    /// <summary>Rewards of a batch's rows without recording gradients (scoring, evaluation).</summary>
    public static double[] Score(LlamaModel model, RewardHead head, Batch b)
    {
        using var tape = Tape.Record(recordGrad: false);
        return Forward(model, head, b).Values;
    }

    /// <summary>Row i's last position that is not padding, as an index into the (B·T) rows.</summary>
    public static int[] LastRealTokens(Batch b)
    {
        var rows = new int[b.B];
        for (int i = 0; i < b.B; i++)
        {
            int last = -1;
            for (int t = 0; t < b.T; t++) if (b.DocumentIds[i * b.T + t] >= 0) last = t;
            if (last < 0) throw new ArgumentException($"reward model: batch row {i} has no tokens");
            rows[i] = i * b.T + last;
        }
        return rows;
    }

    /// <summary>Loss of one pair and its derivatives by r_chosen and r_rejected (before the 1/pairs mean).</summary>
    public static (double Loss, double DChosen, double DRejected) Pair(double rc, double rr, double center, double margin = 0)
    {
        double d = rc - rr - margin;
        double loss = -PreferenceLoss.LogSigmoid(d);
        double g = -PreferenceLoss.Sigmoid(-d);                 // d(−log σ(d))/dd = −σ(−d)
        double s = rc + rr;
        return (loss + center * s * s, g + 2 * center * s, -g + 2 * center * s);
    }

    public StepOutcome ForwardBackward(LlamaModel model, IReadOnlyList<Batch> microBatches, bool checkpointLayers)
    {
        int pairsOfStep = microBatches.Sum(b => b.B / 2);
        var m = new Metrics();
        double loss = 0; int tokens = 0;
        foreach (var b in microBatches)
        {
            using var tape = Tape.Record();
            var (r, values) = Forward(model, head, b, checkpointLayers);
            var w = new float[b.B];
            loss += Terms(values, b.B / 2, pairsOfStep, w, m, Margins(data, b));
            tape.Backward(Ops.Sum(Ops.Mul(Ops.Reshape(r, b.B), Tensor.FromArray(w, b.B))));
            tokens += b.RealTokens;
        }
        return new StepOutcome(loss, tokens, m.Result());
    }

    /// <summary>This micro-batch's share of the step loss; dL/dr per row into <paramref name="dR"/>.</summary>
    private double Terms(double[] r, int P, int pairsOfStep, float[] dR, Metrics m, double[]? margins)
    {
        double loss = 0;
        for (int k = 0; k < P; k++)
        {
            var (l, dc, dr) = Pair(r[k], r[P + k], centerRewardsCoefficient, margins?[k] ?? 0);
            loss += l / pairsOfStep;
            dR[k] = (float)(dc / pairsOfStep);
            dR[P + k] = (float)(dr / pairsOfStep);
            m.Add(r[k], r[P + k]);
        }
        return loss;
    }

    /// <summary>Held-out loss and pairwise accuracy (the share of pairs whose chosen completion gets the higher reward).</summary>
    public IReadOnlyDictionary<string, double> Evaluate(LlamaModel model, Data.Preference.PreferenceData eval, int itemsPerBatch)
    {
        var m = new Metrics();
        double loss = 0;
        for (int s = 0; s < eval.Count; s += itemsPerBatch)
        {
            var b = eval.Collate(Enumerable.Range(s, Math.Min(itemsPerBatch, eval.Count - s)).ToArray());
            loss += Terms(Score(model, head, b), b.B / 2, eval.Count, new float[b.B], m, Margins(eval, b));
        }
        var result = new Dictionary<string, double> { ["loss"] = loss };
        foreach (var (k, v) in m.Result()) result[k] = v;
        return result;
    }

    // The margins of a batch's pairs in row order (null when the data has none).
    private static double[]? Margins(Data.Preference.PreferenceData? d, Batch b) =>
        d is { HasMargins: true } ? d.ItemsOf(b).Select(d.Margin).ToArray() : null;

    /// <summary>TRL's reward metrics: accuracy (chosen reward above rejected), and the mean rewards and margin.</summary>
    private sealed class Metrics
    {
        private double _rc, _rr, _acc; private int _n;
        public void Add(double rc, double rr) { _n++; _rc += rc; _rr += rr; if (rc > rr) _acc++; }
        public Dictionary<string, double> Result()
        {
            double n = Math.Max(1, _n);
            return new() { ["accuracy"] = _acc / n, ["rewards/chosen"] = _rc / n, ["rewards/rejected"] = _rr / n, ["rewards/margins"] = (_rc - _rr) / n };
        }
    }
}
