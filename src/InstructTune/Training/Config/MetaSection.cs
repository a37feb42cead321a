namespace InstructTune.Training.Config;

// Meta-learning an initialisation over a family of instruction tasks (issue 17, item 5): Reptile and first-order MAML
// as the step objective of `itune train` (Training/Continual/MetaLearning.cs), then the fast-adaptation comparison on
// held-out tasks (run_dir/meta.json + meta.html). docs/CONTINUAL.md has the measurement and its command.

/// <summary>Which meta-learning update replaces the plain gradient step (meta.algorithm).</summary>
public enum MetaAlgorithm
{
    Off,
    /// <summary>Reptile (Nichol et al. 2018): k SGD steps on one task, then move toward the adapted weights.</summary>
    Reptile,
    /// <summary>First-order MAML (Finn et al. 2017, §5.2): k SGD steps on the task's support batches, then the query gradient at the adapted weights.</summary>
    Fomaml,
}

/// <summary>`meta:` — read when meta.algorithm is reptile or fomaml (keys read by Recipes/FineTuneRecipe.cs and Training/Continual/MetaLearning.cs).</summary>
public sealed class MetaSection
{
    [ConfigKey("off | reptile | fomaml: every optimizer step is one meta-iteration over meta.tasks_per_step tasks of the training data (tasks = the records' task labels), and the run's optimizer (AdamW at training.learning_rate) applies the meta-gradient; the exported weights are the meta-learned initialisation.")]
    public MetaAlgorithm Algorithm { get; set; } = MetaAlgorithm.Off;
    [ConfigKey("Inner SGD steps on one task per meta-iteration (k); each on training.micro_batch_size examples of that task. Reptile with 1 inner step is plain multi-task training on the same batches.", Min = 1, Max = 1000)]
    public int InnerSteps { get; set; } = 5;
    [ConfigKey("Learning rate of the inner SGD steps, and of the fast-adaptation fine-tuning on meta.adapt_tasks.", Min = 0, MinExclusive = true)]
    public double InnerLearningRate { get; set; } = 0.01;
    [ConfigKey("Tasks per meta-iteration (the meta-batch); their meta-gradients are averaged.", Min = 1, Max = 1000)]
    public int TasksPerStep { get; set; } = 1;
    [ConfigKey("Task labels held out of meta-training: after training, each is fine-tuned for meta.adapt_steps SGD steps from the meta-learned weights and from the run's starting weights, its held-out loss recorded after every step (run_dir/meta.json, meta.html). Needs data.validation_fraction > 0.")]
    public List<string> AdaptTasks { get; set; } = [];
    [ConfigKey("SGD steps of the fast-adaptation comparison on each of meta.adapt_tasks (K).", Min = 1, Max = 100000)]
    public int AdaptSteps { get; set; } = 20;
    [ConfigKey("Held-out loss the fast adaptation must reach (steps to target are reported for both starts); 0 = the loss the starting weights reach after meta.adapt_steps.", Min = 0)]
    public double TargetLoss { get; set; }
}
