namespace InstructTune.Training.Config;

/// <summary>`iasft:` — read when training.method = iasft (instruction-aware sparse fine-tuning, Peft/Iasft). The
/// diagonal Fisher of the targeted weights is estimated on the training data before step 1; the top `fraction` of its
/// entries train as a sparse delta (adapter folder: indices + values, docs/ARCHITECTURE.md "IaSFT").</summary>
public sealed class IasftSection
{
    [ConfigKey("Share of the targeted weight entries that train (the top of the diagonal Fisher); 0.005 = 0.5 %.", Min = 0, Max = 1, MinExclusive = true)]
    public double Fraction { get; set; } = 0.005;
    [ConfigKey("per_tensor (top fraction of each weight matrix) | global (top fraction over all targeted matrices).")]
    public Peft.Iasft.FisherSelection Selection { get; set; } = Peft.Iasft.FisherSelection.PerTensor;
    [ConfigKey("Batches (training.micro_batch_size rows each) whose squared response-loss gradients are averaged into the Fisher.", Min = 1, Max = 100000)]
    public int FisherBatches { get; set; } = 8;
    [ConfigKey("Linear layers whose weights may train (module-name suffixes, or \"re:\" + a regular expression).")]
    public List<string> TargetModules { get; set; } = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
}
