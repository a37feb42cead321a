namespace InstructTune.Training.Config;

// Continual instruction learning (issue 17): the stages of data.stages trained in sequence on one model/adapter,
// with per-stage learning rates (data.stages[].learning_rate), EWC across stages (loss.ewc_lambda with two or more
// stages), and the forgetting matrix. The recipe side is Training/Continual/ (ContinualStages) called from
// Recipes/FineTuneRecipe.cs; docs/ARCHITECTURE.md "Continual learning" maps each key to its code.

/// <summary>Gradient projection against an episodic memory of earlier stages (Training/Continual/EpisodicMemory.cs).</summary>
public enum GemMode
{
    Off,
    /// <summary>A-GEM (Chaudhry et al. 2019): one reference gradient on the whole memory; project when it conflicts.</summary>
    Agem,
    /// <summary>GEM (Lopez-Paz &amp; Ranzato 2017): one constraint per earlier stage, the QP solved exactly.</summary>
    Gem,
}

/// <summary>How stages are trained one after the other (keys read by Training/Continual/ContinualStages.cs).</summary>
public sealed class ContinualSection
{
    [ConfigKey("Each stage runs training.lr_scheduler (with training.warmup_steps) over its own steps at its own peak; false: one schedule over the whole run, scaled by the stage's learning_rate.")]
    public bool RestartSchedule { get; set; }
    [ConfigKey("Examples of a stage's training data whose squared gradients (one example at a time) give EWC's diagonal Fisher at the stage's end; 0 = every example.", Min = 0)]
    public int FisherSamples { get; set; } = 128;
    [ConfigKey("Online EWC (Schwarz et al. 2018): the Fishers of earlier stages decay by γ and add up around the latest anchor; 1 = one penalty per earlier stage, each around its own anchor (Kirkpatrick et al. 2017).", Min = 0, Max = 1, MinExclusive = true)]
    public double EwcGamma { get; set; } = 1.0;
    [ConfigKey("L2 toward the previous stage's final weights, λ/2·Σ(θ − θ*_{k−1})² in every stage after the first: the simple baseline beside EWC (a Fisher of ones). The anchor is saved as run_dir/stages/stage-K/l2_anchor.safetensors; needs two or more stages. 0 = off.", Min = 0)]
    public double L2PreviousLambda { get; set; }
    [ConfigKey("Gradient episodic memory: off | agem (one reference gradient on the whole memory) | gem (one constraint per earlier stage, QP solved exactly); needs two or more stages.")]
    public GemMode Gem { get; set; } = GemMode.Off;
    [ConfigKey("Examples of each finished stage kept in the episodic memory (continual.gem).", Min = 1)]
    public int MemoryPerStage { get; set; } = 64;
    [ConfigKey("Memory examples per reference gradient at every step (A-GEM: from the whole memory; GEM: from each earlier stage).", Min = 1)]
    public int MemoryBatch { get; set; } = 8;
    [ConfigKey("With two or more stages: evaluate before training and after every stage on every stage's held-out examples, and write forgetting.json + forgetting.html (R matrix, ACC, BWT, FWT, forgetting).")]
    public bool ForgettingReport { get; set; } = true;
}
