namespace InstructTune.Training.Config;

// The typed run configuration (the "recipe"): one schema for every command (train, prepare, eval, generate,
// quickstart). Every property has a default that runs; YAML keys are the snake_case property names (e.g.
// `training.learning_rate`). Every settable property carries a [ConfigKey] with its one-line description and,
// for numbers, its allowed range: the binder enforces it and `itune config schema` prints it.
// Adding a key: a property with [ConfigKey("...", Min = .., Max = ..)] in the section it belongs to; a new section
// goes in its own file in this folder, with one property line on TrainConfig below. Every key must be read
// somewhere (ConfigSchemaTests checks the compiled code calls its getter outside this folder).

public enum TuningMethod { Full, Lora, Qlora, Ia3, PromptTuning, PrefixTuning, Iasft, Ipeft, Iapt, Progressive, Hint }
public enum LrSchedule { Constant, Linear, Cosine }
public enum TrainingPrecision { Float32, Bf16 }
public enum TaskWeighting { None, Fixed, InverseFrequency, Uncertainty }
public enum WeightStorage { Float32, Bfloat16 }

public sealed class TrainConfig
{
    [ConfigKey("The base model: checkpoint folder, tokenizer, storage of frozen weights.")]
    public ModelSection Model { get; set; } = new();
    [ConfigKey("The training data: file, format, prompt template, sequence length, validation split.")]
    public DataSection Data { get; set; } = new();
    [ConfigKey("Optimisation: method, steps, batch, learning rate and schedule, AdamW, clipping, guards.")]
    public TrainingSection Training { get; set; } = new();
    [ConfigKey("The objective: response/next-token weights, label smoothing, task weighting, regularisers.")]
    public LossSection Loss { get; set; } = new();
    [ConfigKey("LoRA / QLoRA adapters (training.method lora or qlora).")]
    public LoraSection Lora { get; set; } = new();
    [ConfigKey("IA3 adapters (training.method ia3): learned scaling vectors.")]
    public Ia3Section Ia3 { get; set; } = new();
    [ConfigKey("Prompt tuning (training.method prompt_tuning): soft prompt tokens at the embedding layer.")]
    public PromptTuningSection PromptTuning { get; set; } = new();
    [ConfigKey("Prefix tuning (training.method prefix_tuning): per-layer key/value prefixes.")]
    public PrefixTuningSection PrefixTuning { get; set; } = new();
    [ConfigKey("IaSFT (training.method iasft): the top Fisher entries of the weights train as a sparse delta.")]
    public IasftSection Iasft { get; set; } = new();
    [ConfigKey("iPEFT (training.method ipeft): low-rank adapters gated per layer by the instruction's representation.")]
    public IpeftSection Ipeft { get; set; } = new();
    [ConfigKey("IAPT (training.method iapt): per-layer soft prompts generated from each example's instruction.")]
    public IaptSection Iapt { get; set; } = new();
    [ConfigKey("HINT (training.method hint): instructions encoded once per task per batch; a hypernetwork generates adapter gates and prompts.")]
    public HintSection Hint { get; set; } = new();
    [ConfigKey("The run folder and its checkpoints.")]
    public CheckpointSection Checkpoint { get; set; } = new();
    [ConfigKey("Evaluation during training: validation loss, sample generations, early stopping.")]
    public EvalSection Eval { get; set; } = new();
    [ConfigKey("Metrics logging: metrics.jsonl, TensorBoard, progress display.")]
    public LoggingSection Logging { get; set; } = new();
    [ConfigKey("Feedback tuning (training.objective dpo, ipo, kto, orpo, simpo, reward): β, loss type, weights, reference log-probs.")]
    public PreferenceSection Preference { get; set; } = new();
    [ConfigKey("Continual learning across data.stages: per-stage schedules, EWC's Fisher per stage, the forgetting report.")]
    public ContinualSection Continual { get; set; } = new();
    [ConfigKey("Meta-learning an initialisation over task families (Reptile, first-order MAML) and the fast-adaptation comparison on held-out tasks.")]
    public MetaSection Meta { get; set; } = new();
    [ConfigKey("Data-parallel training under mpirun: ZeRO-1, threads per rank, collective timeout, allreduce buckets.")]
    public DistributedSection Distributed { get; set; } = new();
    [ConfigKey("itune serve: bind address, auth, adapters, batching and request limits.")]
    public ServeSection Serve { get; set; } = new();
    [ConfigKey("itune synth: instruction data generation (Self-Instruct, Evol-Instruct, quality control) against a chat endpoint.")]
    public SynthSection Synth { get; set; } = new();
}

public sealed class ModelSection
{
    [ConfigKey("Folder of a Hugging Face checkpoint (config.json, *.safetensors, tokenizer files).")]
    public string Path { get; set; } = "";
    [ConfigKey("Tokenizer folder or tokenizer.json/tokenizer.model file; empty = the model folder.")]
    public string Tokenizer { get; set; } = "";
    [ConfigKey("Storage of frozen base weights in PEFT runs: float32, or bfloat16 (every frozen Linear weight held as bf16, half the bytes, computed with the bf16 inference GEMM; trainable weights stay float32). Refused with training.method full.")]
    public WeightStorage WeightStorage { get; set; } = WeightStorage.Float32;
    [ConfigKey("Instruction-aware model variants (segment embeddings, instruction gates); all off by default.")]
    public InstructionAwareSection InstructionAware { get; set; } = new();
}

public sealed partial class DataSection
{
    [ConfigKey("Training dataset file (JSON/JSONL/CSV) or SNI task folder.")]
    public string Path { get; set; } = "";
    [ConfigKey("Record format: alpaca | dolly | sharegpt | messages | sni | gsm8k | csv | self-instruct | text.")]
    public string Format { get; set; } = "alpaca";
    [ConfigKey("Prompt template: alpaca | chatml | llama2 | llama3, or a format string with {instruction} {input} {output}.")]
    public string Template { get; set; } = "alpaca";
    [ConfigKey("Held-out dataset (format data.format, prompt data.template, same max_seq_len) for the evaluation loss; empty = split data.validation_fraction off the training data.")]
    public string ValidationPath { get; set; } = "";
    [ConfigKey("Longest example in tokens; longer ones are truncated (input first).", Min = 2)]
    public int MaxSeqLen { get; set; } = 512;
    [ConfigKey("Pack several examples into each row (document-masked attention) instead of padding buckets.")]
    public bool Pack { get; set; } = true;
    [ConfigKey("Also learn the prompt tokens (default: loss on the response only).")]
    public bool TrainOnInputs { get; set; }
    [ConfigKey("Share of the training data held out for validation when data.validation_path is empty (ignored when it is set).", Min = 0, Max = 1, MaxExclusive = true)]
    public double ValidationFraction { get; set; } = 0.02;
}

public sealed class TrainingSection
{
    [ConfigKey("full | lora | qlora (LoRA over an NF4-quantised base) | ia3 | prompt_tuning | prefix_tuning | iasft (Fisher-sparse delta) | ipeft (instruction-gated adapters) | iapt (instruction-aware prompt tuning) | progressive (one LoRA column per data.stages stage, lora.rank/alpha/target_modules, earlier columns frozen, lateral scalars) | hint (hypernetwork instruction tuning).")]
    public TuningMethod Method { get; set; } = TuningMethod.Lora;
    [ConfigKey("sft | dpo | ipo | kto | orpo | simpo | reward (feedback objectives read the `preference` section; reward trains a scalar head, saved as reward_head.safetensors; docs/PREFERENCE.md).")]
    public TrainingObjective Objective { get; set; } = TrainingObjective.Sft;
    [ConfigKey("Passes over the training data (used when training.max_steps is -1).", Min = 0)]
    public int Epochs { get; set; } = 1;
    [ConfigKey("Optimizer steps; -1 = as many as the epochs give.", Min = -1)]
    public int MaxSteps { get; set; } = -1;
    [ConfigKey("Rows per micro-batch.", Min = 1)]
    public int MicroBatchSize { get; set; } = 4;
    [ConfigKey("Micro-batches per optimizer step (the loss is normalised over all their learned tokens).", Min = 1)]
    public int GradientAccumulationSteps { get; set; } = 1;
    [ConfigKey("Peak learning rate.", Min = 0, MinExclusive = true)]
    public double LearningRate { get; set; } = 2e-4;
    [ConfigKey("AdamW decoupled weight decay (matrices only).", Min = 0)]
    public double WeightDecay { get; set; } = 0.0;
    [ConfigKey("AdamW β1.", Min = 0, Max = 1, MaxExclusive = true)]
    public double AdamBeta1 { get; set; } = 0.9;
    [ConfigKey("AdamW β2.", Min = 0, Max = 1, MaxExclusive = true)]
    public double AdamBeta2 { get; set; } = 0.999;
    [ConfigKey("AdamW ε.", Min = 0, MinExclusive = true)]
    public double AdamEpsilon { get; set; } = 1e-8;
    [ConfigKey("Learning-rate schedule after warmup.")]
    public LrSchedule LrScheduler { get; set; } = LrSchedule.Cosine;
    [ConfigKey("Linear warmup steps from 0 to the peak learning rate.", Min = 0)]
    public int WarmupSteps { get; set; } = 0;
    [ConfigKey("Clip the global gradient norm to this (0 = no clipping).", Min = 0)]
    public double MaxGradNorm { get; set; } = 1.0;
    [ConfigKey("Recompute each decoder layer in backward instead of keeping its activations.")]
    public bool ActivationCheckpointing { get; set; }
    [ConfigKey("float32 | bf16: bf16 = mixed precision as PyTorch's CPU autocast (every Linear/MatMul GEMM of forward and backward on bf16 operands with float32 accumulation, oneDNN's bf16 dot products where the CPU has AVX512-BF16; master weights, gradients, optimizer state, norms, softmax, attention and loss stay float32).")]
    public TrainingPrecision Precision { get; set; } = TrainingPrecision.Float32;
    [ConfigKey("Seed of data order, validation split, adapter init, dropout and NEFTune noise.", Min = 0)]
    public int Seed { get; set; } = 42;
    [ConfigKey("Loss spike guard: skip a step whose loss exceeds this multiple of the running mean (0 = off).", Min = 0)]
    public double SpikeFactor { get; set; } = 0.0;
    [ConfigKey("Stop after this many consecutive non-finite or skipped steps.", Min = 1)]
    public int MaxBadSteps { get; set; } = 5;
    [ConfigKey("NEFTune noise scale α on input embeddings (0 = off; the paper uses 5).", Min = 0)]
    public double NeftuneAlpha { get; set; } = 0.0;
}

public sealed class LossSection
{
    [ConfigKey("Weight of the next-token loss over all tokens (L_total = next_token_weight·L_next + lambda_instruction·L_instruction).", Min = 0)]
    public double NextTokenWeight { get; set; } = 0.0;
    [ConfigKey("Weight of the response-token (instruction) loss.", Min = 0)]
    public double LambdaInstruction { get; set; } = 1.0;
    [ConfigKey("Label smoothing ε of the cross-entropy.", Min = 0, Max = 1, MaxExclusive = true)]
    public double LabelSmoothing { get; set; } = 0.0;
    [ConfigKey("Per-task loss weights: none | fixed (loss.task_weights) | inverse_frequency | uncertainty (learned).")]
    public TaskWeighting TaskWeighting { get; set; } = TaskWeighting.None;
    [ConfigKey("Task name → weight, for loss.task_weighting: fixed.", Min = 0)]
    public Dictionary<string, double>? TaskWeights { get; set; }
    [ConfigKey("EWC strength λ (0 = off). With two or more data.stages: the Fisher of each stage's data at its final weights penalises the later stages (continual.*); with one stage: the Fisher of the validation (or training) data at the starting weights.", Min = 0)]
    public double EwcLambda { get; set; } = 0.0;
    [ConfigKey("A fisher.safetensors written by an earlier run (run_dir/stages/stage-K/): its Fisher and anchor weights are penalised from step 1 with loss.ewc_lambda.")]
    public string EwcReferencePath { get; set; } = "";
    [ConfigKey("L2-SP strength toward the starting weights (0 = off).", Min = 0)]
    public double L2SpLambda { get; set; } = 0.0;
}

public sealed class LoraSection
{
    [ConfigKey("Adapter rank r.", Min = 1)]
    public int Rank { get; set; } = 8;
    [ConfigKey("LoRA α: the update is scaled by α/r (α/√r with lora.use_rslora).", Min = 0, MinExclusive = true)]
    public double Alpha { get; set; } = 16;
    [ConfigKey("Dropout on the adapter's input.", Min = 0, Max = 1, MaxExclusive = true)]
    public double Dropout { get; set; } = 0.0;
    [ConfigKey("Linear layers that get adapters (Hugging Face names).")]
    public List<string> TargetModules { get; set; } = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
    [ConfigKey("Rank-stabilised scaling α/√r.")]
    public bool UseRslora { get; set; }
    [ConfigKey("DoRA (PEFT's use_dora): a trained magnitude per output row over the normalised W + scale·B·A.")]
    public bool UseDora { get; set; }
}

public sealed class CheckpointSection
{
    [ConfigKey("The run folder: checkpoints, metrics.jsonl, run.json, config.yaml, the exported adapter or model.")]
    public string OutputDir { get; set; } = "runs/train";
    [ConfigKey("Write a resumable checkpoint every this many steps (0 = only at the end).", Min = 0)]
    public int SaveEverySteps { get; set; } = 100;
    [ConfigKey("Checkpoints kept; older ones of this run are pruned.", Min = 1)]
    public int KeepLast { get; set; } = 3;
}

public sealed partial class EvalSection
{
    [ConfigKey("Evaluation loss every this many steps and at the end (0 = off).", Min = 0)]
    public int EverySteps { get; set; } = 0;
    [ConfigKey("Greedy generations of the first N held-out prompts at each evaluation (eval.every_steps), written with their references to run_dir/generations/step_NNNNNN.jsonl; 0 = off.", Min = 0)]
    public int GenerationSamples { get; set; } = 0;
    [ConfigKey("Stop after this many evaluations without a better loss (0 = off).", Min = 0)]
    public int EarlyStoppingPatience { get; set; } = 0;
}

public sealed class LoggingSection
{
    [ConfigKey("Log a metrics line every this many steps.", Min = 1)]
    public int EverySteps { get; set; } = 1;
    [ConfigKey("Also write TensorBoard event files.")]
    public bool TensorBoard { get; set; } = true;
    [ConfigKey("Show a progress bar on an interactive terminal.")]
    public bool Progress { get; set; } = true;
}
