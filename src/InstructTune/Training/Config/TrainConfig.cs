namespace InstructTune.Training.Config;

// The typed training configuration. Every property has a default that runs; YAML keys are the snake_case
// property names (e.g. `training.learning_rate`). Read with ConfigLoader, which applies key=value overrides.

public enum TuningMethod { Full, Lora, Qlora }
public enum LrSchedule { Constant, Linear, Cosine }
public enum TaskWeighting { None, Fixed, InverseFrequency, Uncertainty }
public enum WeightStorage { Float32, Bfloat16 }

public sealed class TrainConfig
{
    public ModelSection Model { get; set; } = new();
    public DataSection Data { get; set; } = new();
    public TrainingSection Training { get; set; } = new();
    public LossSection Loss { get; set; } = new();
    public LoraSection Lora { get; set; } = new();
    public CheckpointSection Checkpoint { get; set; } = new();
    public EvalSection Eval { get; set; } = new();
    public LoggingSection Logging { get; set; } = new();
    public PreferenceSection Preference { get; set; } = new();
}

public sealed class ModelSection
{
    /// <summary>Folder of a Hugging Face checkpoint (config.json, *.safetensors, tokenizer files).</summary>
    public string Path { get; set; } = "";
    /// <summary>Tokenizer folder or .model file; empty = the model folder.</summary>
    public string Tokenizer { get; set; } = "";
    /// <summary>Storage of frozen/base weights; float32 master weights are kept for what trains.</summary>
    public WeightStorage WeightStorage { get; set; } = WeightStorage.Float32;
}

public sealed partial class DataSection
{
    public string Path { get; set; } = "";
    public string Format { get; set; } = "alpaca";
    public string Template { get; set; } = "alpaca";
    public string ValidationPath { get; set; } = "";
    public int MaxSeqLen { get; set; } = 512;
    public bool Pack { get; set; } = true;
    public bool TrainOnInputs { get; set; }
    public double ValidationFraction { get; set; } = 0.02;
}

public sealed class TrainingSection
{
    public TuningMethod Method { get; set; } = TuningMethod.Lora;
    /// <summary>sft | dpo | ipo | kto | orpo | simpo | reward (feedback objectives read the `preference` section).</summary>
    public TrainingObjective Objective { get; set; } = TrainingObjective.Sft;
    public int Epochs { get; set; } = 1;
    /// <summary>Optimizer steps; -1 = as many as the epochs give.</summary>
    public int MaxSteps { get; set; } = -1;
    public int MicroBatchSize { get; set; } = 4;
    public int GradientAccumulationSteps { get; set; } = 1;
    public double LearningRate { get; set; } = 2e-4;
    public double WeightDecay { get; set; } = 0.0;
    public double AdamBeta1 { get; set; } = 0.9;
    public double AdamBeta2 { get; set; } = 0.999;
    public double AdamEpsilon { get; set; } = 1e-8;
    public LrSchedule LrScheduler { get; set; } = LrSchedule.Cosine;
    public int WarmupSteps { get; set; } = 0;
    public double MaxGradNorm { get; set; } = 1.0;
    public bool ActivationCheckpointing { get; set; }
    public int Seed { get; set; } = 42;
    /// <summary>Loss spike guard: skip a step whose loss exceeds this multiple of the running mean (0 = off).</summary>
    public double SpikeFactor { get; set; } = 0.0;
    /// <summary>Stop after this many consecutive non-finite or skipped steps.</summary>
    public int MaxBadSteps { get; set; } = 5;
    public double NeftuneAlpha { get; set; } = 0.0;
}

public sealed class LossSection
{
    /// <summary>L_total = next_token_weight · L_next-token + lambda_instruction · L_instruction.</summary>
    public double NextTokenWeight { get; set; } = 0.0;
    public double LambdaInstruction { get; set; } = 1.0;
    public double LabelSmoothing { get; set; } = 0.0;
    public TaskWeighting TaskWeighting { get; set; } = TaskWeighting.None;
    public Dictionary<string, double>? TaskWeights { get; set; }
    /// <summary>EWC strength (0 = off); the diagonal Fisher is estimated on EwcReferencePath.</summary>
    public double EwcLambda { get; set; } = 0.0;
    public string EwcReferencePath { get; set; } = "";
    /// <summary>L2-SP strength toward the base weights (0 = off).</summary>
    public double L2SpLambda { get; set; } = 0.0;
}

public sealed class LoraSection
{
    public int Rank { get; set; } = 8;
    public double Alpha { get; set; } = 16;
    public double Dropout { get; set; } = 0.0;
    public List<string> TargetModules { get; set; } = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
    public bool UseRslora { get; set; }
}

public sealed class CheckpointSection
{
    public string OutputDir { get; set; } = "runs/train";
    public int SaveEverySteps { get; set; } = 100;
    public int KeepLast { get; set; } = 3;
}

public sealed class EvalSection
{
    public int EverySteps { get; set; } = 0;
    public int GenerationSamples { get; set; } = 0;
    public int EarlyStoppingPatience { get; set; } = 0;
}

public sealed class LoggingSection
{
    public int EverySteps { get; set; } = 1;
    public bool TensorBoard { get; set; } = true;
    public bool Progress { get; set; } = true;
}
