namespace InstructTune.Training.Config;

// Feedback tuning after instruction tuning (issue 19): `training.objective` picks the loss, this section holds
// its settings. Defaults are TRL's (DPOConfig, KTOConfig, ORPOConfig, CPOConfig); docs/PREFERENCE.md
// states every formula and where a default differs.

/// <summary>What a run optimises: SFT (the instruction loss of the `loss` section) or a feedback objective.</summary>
public enum TrainingObjective { Sft, Dpo, Ipo, Kto, Orpo, Simpo, Reward }

/// <summary>DPO's loss on the implicit reward margin (TRL `loss_type`): sigmoid (DPO, cDPO with label smoothing) or hinge (SLiC).</summary>
public enum DpoLossType { Sigmoid, Hinge }

public sealed class PreferenceSection
{
    [ConfigKey("β: DPO/IPO/KTO temperature of the implicit reward, ORPO's λ, SimPO's β (TRL default 0.1 everywhere).", Min = 0, MinExclusive = true)]
    public double Beta { get; set; } = 0.1;
    [ConfigKey("DPO only: sigmoid | hinge (IPO is `training.objective: ipo`).")]
    public DpoLossType LossType { get; set; } = DpoLossType.Sigmoid;
    [ConfigKey("ε of conservative DPO (cDPO) and of SimPO: the share of pairs assumed mislabelled (0 = plain DPO).", Min = 0, Max = 0.5, MaxExclusive = true)]
    public double LabelSmoothing { get; set; } = 0.0;
    [ConfigKey("KTO: weight of the desirable examples' losses.", Min = 0)]
    public double DesirableWeight { get; set; } = 1.0;
    [ConfigKey("KTO: weight of the undesirable examples' losses.", Min = 0)]
    public double UndesirableWeight { get; set; } = 1.0;
    [ConfigKey("Unpaired records with a numeric `score` instead of `label`: desirable when score ≥ this.")]
    public double ScoreThreshold { get; set; } = 0.5;
    [ConfigKey("SimPO's target margin γ (the loss uses γ/β); TRL CPOConfig default 0.5.", Min = 0)]
    public double SimpoGamma { get; set; } = 0.5;
    [ConfigKey("SimPO: weight of the NLL (behaviour-cloning) term on chosen responses; 0 = SimPO, 1 = CPO-SimPO.", Min = 0)]
    public double CpoAlpha { get; set; } = 0.0;
    [ConfigKey("Compute the reference model's log-probs once before training and keep them in run_dir/reference_logps.json (reused on resume). Full fine-tuning always does (no second copy of the weights is kept); LoRA/QLoRA otherwise run the base with the adapter disabled at every step.")]
    public bool PrecomputeRefLogProbs { get; set; } = false;
    [ConfigKey("Reward model (objective reward): TRL's center_rewards_coefficient c, adding c·mean((r_chosen + r_rejected)²) to the Bradley–Terry loss so rewards stay centred on 0 (0 = off).", Min = 0)]
    public double CenterRewardsCoefficient { get; set; } = 0.0;
    [ConfigKey("Skip malformed feedback records (counted in run_dir/data/preference_stats.json, listed in rejected.jsonl) instead of stopping at the first.")]
    public bool SkipInvalidRecords { get; set; } = false;
}
