using InstructTune.Data.Templating;

namespace InstructTune.Training.Config;

// The data half of the recipe (issue 12): a list of datasets mixed by a stated formula, pre-training text at a token
// ratio, stages with replay, prompt formats (built-in, format string, or the tokenizer's own Jinja chat template) with
// train-on policies, augmentation and quality keys. The pipeline that reads these keys is Data/Pipeline/DataRecipe.cs;
// `itune prepare` and `itune train` both run it.

/// <summary>How the datasets of one stage are mixed (the formulas are in docs/ARCHITECTURE.md, "Datasets and mixing").</summary>
public enum DataMixing
{
    /// <summary>r_i ∝ min(n_i, cap_i): examples-proportional with a per-dataset cap (T5/FLAN).</summary>
    Proportional,
    /// <summary>r_i ∝ min(n_i, cap_i)^(1/T) with T = data.temperature.</summary>
    Temperature,
    /// <summary>r_i ∝ weight_i.</summary>
    Weights,
}

/// <summary>Duplicate removal.</summary>
public enum DedupMode { Exact, Near, Off }

/// <summary>What duplicates are judged on.</summary>
public enum DedupOver { Prompt, PromptResponse }

/// <summary>What a quality rule does to a record that fails it.</summary>
public enum QualityAction { Reject, Review }

public sealed partial class DataSection
{
    [ConfigKey("Datasets to mix; data.path is the one-dataset shorthand (use one or the other).")]
    public List<DatasetEntry> Datasets { get; set; } = [];
    [ConfigKey("Mixing formula across the datasets of a stage: proportional | temperature | weights.")]
    public DataMixing Mixing { get; set; } = DataMixing.Proportional;
    [ConfigKey("T of temperature mixing (r_i ∝ min(n_i, cap_i)^(1/T)); used when data.mixing is temperature.", Min = 0, MinExclusive = true)]
    public double Temperature { get; set; } = 1.0;
    [ConfigKey("Share of training tokens taken from plain-text datasets (format: text), learned on every token; 0 = they mix like any dataset.", Min = 0, Max = 1, MaxExclusive = true)]
    public double PretrainRatio { get; set; } = 0.0;
    [ConfigKey("Per-stage settings, stage 1 first: epochs, max_steps, replay. Datasets name their stage with `stage:`.")]
    public List<StageEntry> Stages { get; set; } = [];
    [ConfigKey("Replay buffer of earlier stages' examples that data.stages[k].replay draws from (size or fraction; off when both are 0: replay draws from the earlier stages' whole mixtures).")]
    public ReplayBufferSection ReplayBuffer { get; set; } = new();
    [ConfigKey("Skip malformed records (counted by reason, written to rejected.jsonl) instead of failing on the first.")]
    public bool SkipInvalid { get; set; }
    [ConfigKey("Which assistant turns are learned: assistant (every one) | last_assistant | all (every token of the text).")]
    public TrainOn TrainOn { get; set; } = TrainOn.Assistant;
    [ConfigKey("End-of-turn markers learned with `template: chat`: turn (after every learned turn) | last | none.")]
    public TrainOnEos TrainOnEos { get; set; } = TrainOnEos.Turn;
    [ConfigKey("System prompt put in front of every example that has none (a dataset's system_prompt wins).")]
    public string SystemPrompt { get; set; } = "";
    [ConfigKey("Examples longer than max_seq_len: truncate (input first, then instruction) | drop | error.")]
    public TooLongPolicy TooLong { get; set; } = TooLongPolicy.Truncate;
    [ConfigKey("Duplicate removal: exact (normalised text) | near (MinHash, data.near_dup_threshold) | off.")]
    public DedupMode Dedup { get; set; } = DedupMode.Exact;
    [ConfigKey("What duplicates are judged on: prompt | prompt_response.")]
    public DedupOver DedupOver { get; set; } = DedupOver.Prompt;
    [ConfigKey("Jaccard threshold of near-duplicate detection (MinHash LSH), in (0, 1].", Min = 0, Max = 1, MinExclusive = true)]
    public double NearDupThreshold { get; set; } = 0.8;
    [ConfigKey("Quality rules with thresholds; a failing record is rejected or flagged to review.jsonl.")]
    public QualitySection Quality { get; set; } = new();
    [ConfigKey("Augmentations applied to every dataset (instruction masking, inversion, paraphrases, few-shot).")]
    public AugmentSection Augment { get; set; } = new();
}

/// <summary>One dataset of data.datasets.</summary>
public sealed class DatasetEntry
{
    [ConfigKey("File (JSON, JSONL, CSV, Parquet), HF dataset folder (data/<split>-*.parquet), SNI task folder, or LLaMA-Factory dataset_info.json (with `name`).")]
    public string Path { get; set; } = "";
    [ConfigKey("Entry of LLaMA-Factory's dataset_info.json to read (path is that file or its folder); format and columns come from the entry.")]
    public string Name { get; set; } = "";
    [ConfigKey("alpaca | dolly | sharegpt | messages | sni | gsm8k | csv | self-instruct | text; empty = data.format.")]
    public string Format { get; set; } = "";
    [ConfigKey("Column renames, canonical: source (e.g. instruction: prompt, output: completion).")]
    public Dictionary<string, string> Fields { get; set; } = [];
    [ConfigKey("Split of an HF dataset folder (data/<split>-0000x-of-0000n.parquet).")]
    public string Split { get; set; } = "train";
    [ConfigKey("Fixed weight (data.mixing: weights).", Min = 0, MinExclusive = true)]
    public double Weight { get; set; } = 1.0;
    [ConfigKey("Cap on the examples counted for this dataset's rate (proportional and temperature mixing); 0 = no cap.", Min = 0)]
    public int Cap { get; set; } = 0;
    [ConfigKey("Task label of its examples; empty = the format's own label or the file name.")]
    public string Task { get; set; } = "";
    [ConfigKey("Curriculum stage (1, 2, …).", Min = 1)]
    public int Stage { get; set; } = 1;
    [ConfigKey("System prompt for this dataset's examples that have none.")]
    public string SystemPrompt { get; set; } = "";
    [ConfigKey("Prompt format for this dataset; empty = data.template.")]
    public string Template { get; set; } = "";
    [ConfigKey("Too-long policy for this dataset: truncate | drop | error; empty = data.too_long.")]
    public string TooLong { get; set; } = "";
}

/// <summary>One curriculum stage (data.stages[k] is stage k+1).</summary>
public sealed class StageEntry
{
    [ConfigKey("Passes over the stage's mixture; 0 = training.epochs.", Min = 0)]
    public int Epochs { get; set; } = 0;
    [ConfigKey("Optimizer steps of this stage; 0 = as many as its epochs give.", Min = 0)]
    public int MaxSteps { get; set; } = 0;
    [ConfigKey("Peak learning rate of this stage; 0 = training.learning_rate (see continual.restart_schedule).", Min = 0)]
    public double LearningRate { get; set; } = 0.0;
    [ConfigKey("Share of this stage's examples drawn from earlier stages' mixtures (uniformly over them), in [0, 1).", Min = 0, Max = 1, MaxExclusive = true)]
    public double Replay { get; set; } = 0.0;
}

/// <summary>The replay buffer (Data/Mixing/ReplayBuffer.cs).</summary>
public sealed class ReplayBufferSection
{
    [ConfigKey("Examples the buffer keeps (0 = use fraction).", Min = 0)]
    public int Size { get; set; } = 0;
    [ConfigKey("Share of the earlier stages' own examples the buffer keeps, in [0, 1] (used when size is 0).", Min = 0, Max = 1)]
    public double Fraction { get; set; } = 0.0;
    [ConfigKey("reservoir (one uniform reservoir, Algorithm R) | stratified (one reservoir per dataset, equal shares).")]
    public Data.Mixing.ReplaySampling Sampling { get; set; } = Data.Mixing.ReplaySampling.Reservoir;
}

/// <summary>Quality rules (0 / empty = off). Each failing record is rejected or flagged (data.quality.action).</summary>
public sealed class QualitySection
{
    [ConfigKey("reject | review (flagged records go to review.jsonl and are left out of training).")]
    public QualityAction Action { get; set; } = QualityAction.Reject;
    [ConfigKey("Response shorter than this many characters fails.", Min = 0)]
    public int MinResponseChars { get; set; } = 0;
    [ConfigKey("Response longer than this many characters fails (0 = no limit).", Min = 0)]
    public int MaxResponseChars { get; set; } = 0;
    [ConfigKey("Share of repeated word 3-grams in the response above this fails (0 = off), in (0, 1].", Min = 0, Max = 1)]
    public double MaxRepetition { get; set; } = 0.0;
    [ConfigKey("Share of ASCII letters among the response's letters below this fails (a cheap English check; 0 = off).", Min = 0, Max = 1)]
    public double MinAsciiLetters { get; set; } = 0.0;
    [ConfigKey("When the prompt asks for JSON, the response must parse as JSON.")]
    public bool JsonWhenAsked { get; set; }
    [ConfigKey("Regular expressions the response must match (format validation).")]
    public List<string> ResponsePatterns { get; set; } = [];
    [ConfigKey("Share of response words found in the prompt below this fails (reference similarity; 0 = off).", Min = 0, Max = 1)]
    public double MinPromptOverlap { get; set; } = 0.0;
    [ConfigKey("ROUGE-L of an instruction against earlier kept ones at or above this fails (Self-Instruct 0.7; 0 = off).", Min = 0, Max = 1)]
    public double RougeLMax { get; set; } = 0.0;
    [ConfigKey("Complexity-balanced acceptance: resample each dataset so complexity levels 0/1/2 are equally represented.")]
    public bool BalanceComplexity { get; set; }
}

/// <summary>Augmentations (probabilities 0 = off).</summary>
public sealed class AugmentSection
{
    [ConfigKey("Probability that an instruction token is masked (never a response token).", Min = 0, Max = 1)]
    public double InstructionMask { get; set; } = 0.0;
    [ConfigKey("mask (replace by data.augment.mask_token) | drop.")]
    public string InstructionMaskMode { get; set; } = "mask";
    [ConfigKey("Token that replaces masked instruction tokens; must be one token of the vocabulary.")]
    public string MaskToken { get; set; } = "[MASK]";
    [ConfigKey("Share of single-turn records also added inverted (the response becomes the input, the instruction the target).", Min = 0, Max = 1)]
    public double Invert { get; set; } = 0.0;
    [ConfigKey("Instruction of inverted records.")]
    public string InvertInstruction { get; set; } = "Write the instruction that the following response answers.";
    [ConfigKey("JSON file: a list of lists of interchangeable instructions; each record is also added once per other phrasing.")]
    public string Paraphrases { get; set; } = "";
    [ConfigKey("Few-shot prefixing: k positive examples of a Natural-Instructions task in front of each instance (0 = off; sni format).", Min = 0)]
    public int FewShot { get; set; } = 0;
}
