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
    /// <summary>Datasets to mix; data.path is the one-dataset shorthand (use one or the other).</summary>
    public List<DatasetEntry> Datasets { get; set; } = [];
    /// <summary>Mixing formula across the datasets of a stage: proportional | temperature | weights.</summary>
    public DataMixing Mixing { get; set; } = DataMixing.Proportional;
    /// <summary>T of temperature mixing (r_i ∝ min(n_i, cap_i)^(1/T)); used when data.mixing is temperature.</summary>
    public double Temperature { get; set; } = 1.0;
    /// <summary>Share of training tokens taken from plain-text datasets (format: text), learned on every token; 0 = they mix like any dataset.</summary>
    public double PretrainRatio { get; set; } = 0.0;
    /// <summary>Per-stage settings, stage 1 first: epochs, max_steps, replay. Datasets name their stage with `stage:`.</summary>
    public List<StageEntry> Stages { get; set; } = [];
    /// <summary>Skip malformed records (counted by reason, written to rejected.jsonl) instead of failing on the first.</summary>
    public bool SkipInvalid { get; set; }
    /// <summary>Which assistant turns are learned: assistant (every one) | last_assistant | all (every token of the text).</summary>
    public TrainOn TrainOn { get; set; } = TrainOn.Assistant;
    /// <summary>End-of-turn markers learned with `template: chat`: turn (after every learned turn) | last | none.</summary>
    public TrainOnEos TrainOnEos { get; set; } = TrainOnEos.Turn;
    /// <summary>System prompt put in front of every example that has none (a dataset's system_prompt wins).</summary>
    public string SystemPrompt { get; set; } = "";
    /// <summary>Examples longer than max_seq_len: truncate (input first, then instruction) | drop | error.</summary>
    public TooLongPolicy TooLong { get; set; } = TooLongPolicy.Truncate;
    /// <summary>Duplicate removal: exact (normalised text) | near (MinHash, data.near_dup_threshold) | off.</summary>
    public DedupMode Dedup { get; set; } = DedupMode.Exact;
    /// <summary>What duplicates are judged on: prompt | prompt_response.</summary>
    public DedupOver DedupOver { get; set; } = DedupOver.Prompt;
    /// <summary>Jaccard threshold of near-duplicate detection (MinHash LSH), in (0, 1].</summary>
    public double NearDupThreshold { get; set; } = 0.8;
    /// <summary>Quality rules with thresholds; a failing record is rejected or flagged to review.jsonl.</summary>
    public QualitySection Quality { get; set; } = new();
    /// <summary>Augmentations applied to every dataset (instruction masking, inversion, paraphrases, few-shot).</summary>
    public AugmentSection Augment { get; set; } = new();
}

/// <summary>One dataset of data.datasets.</summary>
public sealed class DatasetEntry
{
    /// <summary>File (JSON, JSONL, CSV, Parquet), HF dataset folder (data/&lt;split&gt;-*.parquet), SNI task folder, or LLaMA-Factory dataset_info.json (with `name`).</summary>
    public string Path { get; set; } = "";
    /// <summary>Entry of LLaMA-Factory's dataset_info.json to read (path is that file or its folder); format and columns come from the entry.</summary>
    public string Name { get; set; } = "";
    /// <summary>alpaca | dolly | sharegpt | messages | sni | gsm8k | csv | self-instruct | text; empty = data.format.</summary>
    public string Format { get; set; } = "";
    /// <summary>Column renames, canonical: source (e.g. instruction: prompt, output: completion).</summary>
    public Dictionary<string, string> Fields { get; set; } = [];
    /// <summary>Split of an HF dataset folder (data/&lt;split&gt;-0000x-of-0000n.parquet).</summary>
    public string Split { get; set; } = "train";
    /// <summary>Fixed weight (data.mixing: weights).</summary>
    public double Weight { get; set; } = 1.0;
    /// <summary>Cap on the examples counted for this dataset's rate (proportional and temperature mixing); 0 = no cap.</summary>
    public int Cap { get; set; } = 0;
    /// <summary>Task label of its examples; empty = the format's own label or the file name.</summary>
    public string Task { get; set; } = "";
    /// <summary>Curriculum stage (1, 2, …).</summary>
    public int Stage { get; set; } = 1;
    /// <summary>System prompt for this dataset's examples that have none.</summary>
    public string SystemPrompt { get; set; } = "";
    /// <summary>Prompt format for this dataset; empty = data.template.</summary>
    public string Template { get; set; } = "";
    /// <summary>Too-long policy for this dataset: truncate | drop | error; empty = data.too_long.</summary>
    public string TooLong { get; set; } = "";
}

/// <summary>One curriculum stage (data.stages[k] is stage k+1).</summary>
public sealed class StageEntry
{
    /// <summary>Passes over the stage's mixture; 0 = training.epochs.</summary>
    public int Epochs { get; set; } = 0;
    /// <summary>Optimizer steps of this stage; 0 = as many as its epochs give.</summary>
    public int MaxSteps { get; set; } = 0;
    /// <summary>Share of this stage's examples drawn from earlier stages' mixtures (uniformly over them), in [0, 1).</summary>
    public double Replay { get; set; } = 0.0;
}

/// <summary>Quality rules (0 / empty = off). Each failing record is rejected or flagged (data.quality.action).</summary>
public sealed class QualitySection
{
    /// <summary>reject | review (flagged records go to review.jsonl and are left out of training).</summary>
    public QualityAction Action { get; set; } = QualityAction.Reject;
    /// <summary>Response shorter than this many characters fails.</summary>
    public int MinResponseChars { get; set; } = 0;
    /// <summary>Response longer than this many characters fails (0 = no limit).</summary>
    public int MaxResponseChars { get; set; } = 0;
    /// <summary>Share of repeated word 3-grams in the response above this fails (0 = off), in (0, 1].</summary>
    public double MaxRepetition { get; set; } = 0.0;
    /// <summary>Share of ASCII letters among the response's letters below this fails (a cheap English check; 0 = off).</summary>
    public double MinAsciiLetters { get; set; } = 0.0;
    /// <summary>When the prompt asks for JSON, the response must parse as JSON.</summary>
    public bool JsonWhenAsked { get; set; }
    /// <summary>Regular expressions the response must match (format validation).</summary>
    public List<string> ResponsePatterns { get; set; } = [];
    /// <summary>Share of response words found in the prompt below this fails (reference similarity; 0 = off).</summary>
    public double MinPromptOverlap { get; set; } = 0.0;
    /// <summary>ROUGE-L of an instruction against earlier kept ones at or above this fails (Self-Instruct 0.7; 0 = off).</summary>
    public double RougeLMax { get; set; } = 0.0;
    /// <summary>Complexity-balanced acceptance: resample each dataset so complexity levels 0/1/2 are equally represented.</summary>
    public bool BalanceComplexity { get; set; }
}

/// <summary>Augmentations (probabilities 0 = off).</summary>
public sealed class AugmentSection
{
    /// <summary>Probability that an instruction token is masked (never a response token).</summary>
    public double InstructionMask { get; set; } = 0.0;
    /// <summary>mask (replace by data.augment.mask_token) | drop.</summary>
    public string InstructionMaskMode { get; set; } = "mask";
    /// <summary>Token that replaces masked instruction tokens; must be one token of the vocabulary.</summary>
    public string MaskToken { get; set; } = "[MASK]";
    /// <summary>Share of single-turn records also added inverted (the response becomes the input, the instruction the target).</summary>
    public double Invert { get; set; } = 0.0;
    /// <summary>Instruction of inverted records.</summary>
    public string InvertInstruction { get; set; } = "Write the instruction that the following response answers.";
    /// <summary>JSON file: a list of lists of interchangeable instructions; each record is also added once per other phrasing.</summary>
    public string Paraphrases { get; set; } = "";
    /// <summary>Few-shot prefixing: k positive examples of a Natural-Instructions task in front of each instance (0 = off; sni format).</summary>
    public int FewShot { get; set; } = 0;
}
