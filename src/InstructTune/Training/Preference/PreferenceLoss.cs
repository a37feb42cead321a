// The feedback-tuning losses as scalar functions of per-sequence log-probabilities, with their derivatives.
//
// Every objective here depends on the model only through S = Σ_t log p(y_t | x, y_<t) over the completion tokens
// of each sequence (and its token count n). So a step computes S for every sequence, evaluates the loss and
// dL/dS in double precision here, and backpropagates dL/dS into the per-token log-probs (PreferenceObjective).
// Formulas and defaults are TRL's (trl/trainer/{dpo,kto,orpo,cpo,reward}_trainer.py); docs/PREFERENCE.md cites them.
//
//   DPO (sigmoid, cDPO):  h = (S_c − S_r) − (R_c − R_r);  l = −(1−ε)·logσ(βh) − ε·logσ(−βh)
//   DPO (hinge / SLiC):   l = relu(1 − βh)
//   IPO:                  h on length-averaged log-probs (S/n, R/n);  l = (h − 1/(2β))²
//   KTO:                  z = max(0, mean(S_KL − R_KL)) (no gradient);  desirable l = w_d·(1 − σ(β(S − R − z))),
//                         undesirable l = w_u·(1 − σ(β(z − (S − R))));  loss = mean over examples
//   ORPO:                 a = S/n;  o = (a_c − a_r) − (log(1 − e^{a_c}) − log(1 − e^{a_r}));
//                         loss = NLL_chosen − β·mean(logσ(o)),  NLL_chosen = −Σ S_c / Σ n_c
//   SimPO:                a = S/n;  h = (a_c − a_r) − γ/β;  l = −(1−ε)·logσ(βh) − ε·logσ(−βh);  + α·NLL_chosen (CPO-SimPO)
//
// Implicit rewards logged as TRL: β(S − R) for DPO/KTO, β(S/n − R/n) for IPO, β·S/n for ORPO and SimPO.
using InstructTune.Training.Config;

namespace InstructTune.Training.Preference;

/// <summary>The objective and its settings (from `training.objective` and the `preference` section).</summary>
public sealed record PreferenceOptions(
    TrainingObjective Objective,
    double Beta = 0.1,
    DpoLossType LossType = DpoLossType.Sigmoid,
    double LabelSmoothing = 0,
    double DesirableWeight = 1,
    double UndesirableWeight = 1,
    double SimpoGamma = 0.5,
    double CpoAlpha = 0)
{
    public static PreferenceOptions From(TrainConfig c) => new(c.Training.Objective, c.Preference.Beta, c.Preference.LossType,
        c.Preference.LabelSmoothing, c.Preference.DesirableWeight, c.Preference.UndesirableWeight, c.Preference.SimpoGamma,
        c.Preference.CpoAlpha);

    /// <summary>Objectives that compare with a frozen reference model.</summary>
    public bool NeedsReference => Objective is TrainingObjective.Dpo or TrainingObjective.Ipo or TrainingObjective.Kto;
    /// <summary>Objectives on (chosen, rejected) pairs; KTO reads unpaired examples.</summary>
    public bool Paired => Objective != TrainingObjective.Kto;
    /// <summary>Objectives whose rewards use length-averaged log-probs (TRL: ipo, orpo, simpo).</summary>
    public bool Averaged => Objective is TrainingObjective.Ipo or TrainingObjective.Orpo or TrainingObjective.Simpo;
    /// <summary>Weight of the NLL term on chosen responses (ORPO: 1, SimPO: cpo_alpha, others 0).</summary>
    public double NllWeight => Objective switch { TrainingObjective.Orpo => 1.0, TrainingObjective.Simpo => CpoAlpha, _ => 0.0 };
}

/// <summary>One pair's loss, its derivatives by the chosen/rejected log-prob sums, and its implicit rewards.</summary>
public readonly record struct PairTerms(double Loss, double DChosen, double DRejected, double RewardChosen, double RewardRejected,
    double LogOdds = 0, double LogOddsRatio = 0);

/// <summary>One unpaired (KTO) example's loss, its derivative by its log-prob sum, and its implicit reward.</summary>
public readonly record struct UnpairedTerms(double Loss, double D, double Reward);

public static class PreferenceLoss
{
    public static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));
    public static double Sigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));

    /// <summary>log(1 − e^a) for a &lt; 0, accurate near 0 and far below it.</summary>
    public static double Log1mExp(double a) => a > -0.6931471805599453 ? Math.Log(-double.ExpM1(a)) : Math.Log(1 - Math.Exp(a));

    /// <summary>
    /// A pair's loss under DPO/IPO/ORPO/SimPO. sc, sr: policy log-prob sums of chosen/rejected; nc, nr: their
    /// completion tokens; rc, rr: the reference's sums (ignored by ORPO and SimPO). ORPO's and SimPO's NLL terms are
    /// not included (they are normalised by the step's chosen tokens: <see cref="NllDerivative"/>).
    /// </summary>
    public static PairTerms Pair(PreferenceOptions o, double sc, double sr, int nc, int nr, double rc, double rr)
    {
        double b = o.Beta, eps = o.LabelSmoothing;
        switch (o.Objective)
        {
            case TrainingObjective.Dpo:
                {
                    double h = (sc - sr) - (rc - rr), z = b * h;
                    double loss, dz;
                    if (o.LossType == DpoLossType.Hinge)
                    {
                        loss = Math.Max(0, 1 - z);
                        dz = 1 - z > 0 ? -1 : 0;
                    }
                    else
                    {
                        loss = -(1 - eps) * LogSigmoid(z) - eps * LogSigmoid(-z);
                        dz = -(1 - eps) * Sigmoid(-z) + eps * Sigmoid(z);   // d/dz of the line above
                    }
                    return new PairTerms(loss, dz * b, -dz * b, b * (sc - rc), b * (sr - rr));
                }
            case TrainingObjective.Ipo:
                {
                    double ac = sc / nc, ar = sr / nr;
                    double h = (ac - ar) - (rc / nc - rr / nr), d = h - 1 / (2 * b);
                    return new PairTerms(d * d, 2 * d / nc, -2 * d / nr, b * (ac - rc / nc), b * (ar - rr / nr));
                }
            case TrainingObjective.Orpo:
                {
                    double ac = sc / nc, ar = sr / nr;
                    double odds = (ac - ar) - (Log1mExp(ac) - Log1mExp(ar));
                    double ratio = LogSigmoid(odds);
                    // loss = −β·logσ(o); do/da_c = 1/(1 − e^{a_c}), do/da_r = −1/(1 − e^{a_r}); da/dS = 1/n.
                    double dOdds = -b * Sigmoid(-odds);
                    return new PairTerms(-b * ratio, dOdds / (-double.ExpM1(ac)) / nc, -dOdds / (-double.ExpM1(ar)) / nr,
                        b * ac, b * ar, odds, ratio);
                }
            case TrainingObjective.Simpo:
                {
                    double ac = sc / nc, ar = sr / nr;
                    double z = b * ((ac - ar) - o.SimpoGamma / b);
                    double loss = -(1 - eps) * LogSigmoid(z) - eps * LogSigmoid(-z);
                    double dz = -(1 - eps) * Sigmoid(-z) + eps * Sigmoid(z);
                    return new PairTerms(loss, dz * b / nc, -dz * b / nr, b * ac, b * ar);
                }
            default:
                throw new ArgumentException($"training.objective: {o.Objective} is not a pairwise log-prob objective");
        }
    }

    /// <summary>dNLL/dS_c for every chosen sequence: NLL_chosen = −Σ S_c / Σ n_c over the step, so −1/Σ n_c.</summary>
    public static double NllDerivative(int chosenTokensOfStep) => chosenTokensOfStep == 0 ? 0 : -1.0 / chosenTokensOfStep;

    /// <summary>KTO's reference point: the batch estimate max(0, mean(S_KL − R_KL)) over mismatched (prompt, completion) pairs.</summary>
    public static double KtoKl(IReadOnlyList<double> policyKl, IReadOnlyList<double> referenceKl)
    {
        if (policyKl.Count == 0) return 0;
        double s = 0;
        for (int i = 0; i < policyKl.Count; i++) s += policyKl[i] - referenceKl[i];
        return Math.Max(0, s / policyKl.Count);
    }

    /// <summary>One KTO example: s, r the policy and reference log-prob sums of its completion, kl the step's reference point.</summary>
    public static UnpairedTerms Kto(PreferenceOptions o, double s, double r, bool desirable, double kl)
    {
        double b = o.Beta, ratio = s - r;
        if (desirable)
        {
            double sg = Sigmoid(b * (ratio - kl));
            return new UnpairedTerms(o.DesirableWeight * (1 - sg), -o.DesirableWeight * b * sg * (1 - sg), b * ratio);
        }
        double su = Sigmoid(b * (kl - ratio));
        return new UnpairedTerms(o.UndesirableWeight * (1 - su), o.UndesirableWeight * b * su * (1 - su), b * ratio);
    }
}
