namespace InstructTune.Training.Config;

// Continual instruction learning (issue 17): the stages of data.stages trained in sequence on one model/adapter,
// with per-stage learning rates (data.stages[].learning_rate), EWC across stages (loss.ewc_lambda with two or more
// stages), and the forgetting matrix. The recipe side is Training/Continual/ (ContinualStages) called from
// Recipes/FineTuneRecipe.cs; docs/ARCHITECTURE.md "Continual learning" maps each key to its code.

/// <summary>How stages are trained one after the other (keys read by Training/Continual/ContinualStages.cs).</summary>
public sealed class ContinualSection
{
    [ConfigKey("Each stage runs training.lr_scheduler (with training.warmup_steps) over its own steps at its own peak; false: one schedule over the whole run, scaled by the stage's learning_rate.")]
    public bool RestartSchedule { get; set; }
    [ConfigKey("Examples of a stage's training data whose squared gradients (one example at a time) give EWC's diagonal Fisher at the stage's end; 0 = every example.", Min = 0)]
    public int FisherSamples { get; set; } = 128;
    [ConfigKey("Online EWC (Schwarz et al. 2018): the Fishers of earlier stages decay by γ and add up around the latest anchor; 1 = one penalty per earlier stage, each around its own anchor (Kirkpatrick et al. 2017).", Min = 0, Max = 1, MinExclusive = true)]
    public double EwcGamma { get; set; } = 1.0;
    [ConfigKey("With two or more stages: evaluate before training and after every stage on every stage's held-out examples, and write forgetting.json + forgetting.html (R matrix, ACC, BWT, FWT, forgetting).")]
    public bool ForgettingReport { get; set; } = true;
}
