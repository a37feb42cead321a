namespace InstructTune.Training.Config;

// `eval:` keys of `itune eval run --config FILE [key=value …]` (Evaluation/Run/EvalRunRecipe.FromConfig): the recipe
// names its held-out sets and the sections to compute, and the trained model is evaluated on each set. The model is
// model.path with checkpoint.output_dir's exported adapter (or its final/ model after full fine-tuning) when there
// is one; the command's own options, when given, win over these keys.

public sealed partial class EvalSection
{
    [ConfigKey("Held-out sets evaluated by `itune eval run --config`: files or folders in any format the data pipeline reads (Parquet included).")]
    public List<string> Heldout { get; set; } = [];
    [ConfigKey("Record format of the held-out sets; empty = data.format (or from the file name: gsm8k, .csv, .parquet).")]
    public string Format { get; set; } = "";
    [ConfigKey("Split of a Hugging Face Parquet folder (data/<split>-*.parquet).")]
    public string Split { get; set; } = "test";
    [ConfigKey("Prompt format; empty = the one the adapter (or model) recorded when it was trained, else the tokenizer's chat template or raw.")]
    public string Template { get; set; } = "";
    [ConfigKey("Output folder; each held-out set gets a subfolder named after its file; empty = checkpoint.output_dir/eval.")]
    public string OutputDir { get; set; } = "";
    [ConfigKey("Tokens generated per prompt (greedy).", Min = 1)]
    public int MaxNewTokens { get; set; } = 128;
    [ConfigKey("Prompts generated together (one forward pass per step).", Min = 1)]
    public int BatchSize { get; set; } = 8;
    [ConfigKey("Examples per set, spread evenly over it (seeded with training.seed); 0 = all.", Min = 0)]
    public int Limit { get; set; } = 0;
    [ConfigKey("Text put before each reference when its perplexity is scored (lm-eval target_delimiter).")]
    public string ReferencePrefix { get; set; } = "";
    [ConfigKey("Add multi-turn coherence over the sets' conversations with two or more assistant turns.")]
    public bool MultiTurn { get; set; }
    [ConfigKey("Checkpoint that embeds texts for multi-turn relevance; empty = the evaluated model without its adapter.")]
    public string EmbedModel { get; set; } = "";
    [ConfigKey("Add robustness to paraphrase over this many single-turn examples per set (0 = off).", Min = 0)]
    public int Robustness { get; set; } = 0;
    [ConfigKey("Rewrites per instruction for eval.robustness.", Min = 1, Max = 6)]
    public int Paraphrases { get; set; } = 4;
    [ConfigKey("Chat endpoint for back-translation paraphrases: local:MODEL_DIR[+ADAPTER_DIR] or an OpenAI-compatible http(s) URL; empty = none.")]
    public string BackTranslate { get; set; } = "";
    [ConfigKey("Model name at a remote eval.back_translate endpoint.")]
    public string BackTranslateModel { get; set; } = "";
    [ConfigKey("Environment variable holding the eval.back_translate endpoint's API key.")]
    public string BackTranslateKeyEnv { get; set; } = "";
    [ConfigKey("Pivot language of back-translation.")]
    public string Pivot { get; set; } = "French";
    [ConfigKey("Training file to draw worked examples from for zero-/few-shot curves and cross-task generalisation; empty = off (data.path is a natural choice).")]
    public string ShotsFrom { get; set; } = "";
    [ConfigKey("k values of the shot curves (examples in the prompt).")]
    public List<int> Shots { get; set; } = [0, 1, 2, 4, 8];
    [ConfigKey("Examples evaluated at each k (spread evenly).", Min = 1)]
    public int ShotsLimit { get; set; } = 50;
}
