namespace InstructTune.Training.Config;

// `synth:` — instruction data generation (`itune synth self-instruct | evol-instruct | refine | review`, recipes in
// src/InstructTune/Recipes/Synth, components in src/InstructTune/Data/Synth). The command's own options, when given,
// win over these keys.

public sealed class SynthSection
{
    // ---- endpoint
    [ConfigKey("Chat endpoint: an OpenAI-compatible base URL (http(s)://…/v1) or local:MODEL_DIR[+ADAPTER_DIR] (in process, no network).")]
    public string Endpoint { get; set; } = "";
    [ConfigKey("Model name sent to a remote endpoint (ignored by local:, which serves its own).")]
    public string Model { get; set; } = "";
    [ConfigKey("Environment variable holding the endpoint's API key; empty = no key.")]
    public string ApiKeyEnv { get; set; } = "OPENAI_API_KEY";
    [ConfigKey("Requests in flight at once.", Min = 1, Max = 256)]
    public int Concurrency { get; set; } = 4;
    [ConfigKey("Most requests started per minute (0 = no limit).", Min = 0)]
    public double RequestsPerMinute { get; set; }
    [ConfigKey("Requests per failed call at most (retries on 408/409/429/5xx, refused or dropped connections, timeouts, malformed bodies; Retry-After honoured).", Min = 1, Max = 20)]
    public int MaxAttempts { get; set; } = 4;
    [ConfigKey("Seconds one attempt may take.", Min = 0, MinExclusive = true)]
    public double AttemptTimeoutS { get; set; } = 120;
    [ConfigKey("First retry delay in seconds (exponential backoff with jitter).", Min = 0)]
    public double BaseDelayS { get; set; } = 1;
    [ConfigKey("Longest Retry-After wait honoured, seconds.", Min = 0)]
    public double MaxRetryAfterS { get; set; } = 60;
    [ConfigKey("Largest response body read from a remote endpoint, bytes.", Min = 1024)]
    public long MaxResponseBytes { get; set; } = 1 << 20;
    [ConfigKey("Price of a million prompt tokens (any currency) for the report's cost per stage; 0 = not priced.", Min = 0)]
    public double PromptPricePerMtok { get; set; }
    [ConfigKey("Price of a million completion tokens for the report's cost per stage; 0 = not priced.", Min = 0)]
    public double CompletionPricePerMtok { get; set; }
    [ConfigKey("Sampling temperature of generation requests (judgement requests use 0).", Min = 0, Max = 2)]
    public double Temperature { get; set; } = 0.7;
    [ConfigKey("Nucleus sampling top_p of generation requests (Self-Instruct used 0.5).", Min = 0, Max = 1, MinExclusive = true)]
    public double TopP { get; set; } = 0.5;
    [ConfigKey("max_tokens of each generation request.", Min = 1)]
    public int MaxTokens { get; set; } = 1024;
    [ConfigKey("Local endpoints: a prompt that would leave less than this many tokens of the model's context for the answer (or less than the request's max_tokens, if smaller) is shortened: fewer in-context tasks, then without few-shot examples and the task description.", Min = 1)]
    public int MinCompletionTokens { get; set; } = 64;
    [ConfigKey("Generation requests to a local: model: its end-of-sequence token cannot come before this many answer tokens (vLLM's min_tokens, HF's min_new_tokens), for base models that would stop at once; 0 = off. Remote endpoints refuse a value above 0.", Min = 0)]
    public int MinTokens { get; set; }
    [ConfigKey("Seed of every sampling decision (prompt sampling, operations) and of the endpoint's sampling where it takes one.")]
    public int Seed { get; set; } = 42;
    [ConfigKey("Folder of .txt prompt templates replacing the built-in ones (a copy of configs/synth/); empty = built-in.")]
    public string PromptsDir { get; set; } = "";
    [ConfigKey("Most rounds before a run stops short of its target (each round sends `concurrency` generation requests).", Min = 1)]
    public int MaxRounds { get; set; } = 1000;
    [ConfigKey("A run stops with an error after this many consecutive rounds in which every request failed.", Min = 1)]
    public int MaxFailedRounds { get; set; } = 3;

    // ---- self-instruct
    [ConfigKey("Self-Instruct: tasks to keep (instructions with at least one valid instance).", Min = 1)]
    public int Target { get; set; } = 100;
    [ConfigKey("Self-Instruct: in-context tasks per prompt (the paper: 8).", Min = 1, Max = 50)]
    public int PromptInstructions { get; set; } = 8;
    [ConfigKey("Self-Instruct: of those, how many are machine-generated once the pool has them (the paper: 2).", Min = 0, Max = 50)]
    public int PromptMachineInstructions { get; set; } = 2;
    [ConfigKey("Self-Instruct: a new instruction is kept only if its ROUGE-L F against every pool instruction is below this (the paper: 0.7).", Min = 0, Max = 1, MinExclusive = true)]
    public double RougeThreshold { get; set; } = 0.7;
    [ConfigKey("Self-Instruct: instructions containing one of these words (whole word, any case) are dropped; the paper's list by default.")]
    public List<string> BlockedKeywords { get; set; } = [.. Data.Synth.SelfInstructRules.DefaultBlockedKeywords];
    [ConfigKey("Self-Instruct: most instances kept per task (the paper: 5).", Min = 1)]
    public int MaxInstances { get; set; } = 5;
    [ConfigKey("Self-Instruct: drop a whole answer cut at max_tokens, and the last instance of an instance answer cut there (the paper); false keeps them as they are (for small local models that rarely stop).")]
    public bool DropTruncated { get; set; } = true;
    [ConfigKey("Self-Instruct: an input-first answer without Example/Output markers becomes one input-less instance (for chat models) instead of none (the paper).")]
    public bool LenientInstances { get; set; }

    // ---- embeddings (coherence, reference similarity, topic clusters)
    [ConfigKey("Embeddings: lexical (hashed word uni/bigrams, no model: wording, not meaning) or endpoint (local: the model's mean-pooled hidden state; remote: /v1/embeddings with embedding_model).")]
    public string Embeddings { get; set; } = "lexical";
    [ConfigKey("Embedding model name of a remote endpoint (synth.embeddings endpoint).")]
    public string EmbeddingModel { get; set; } = "";

    // ---- evol-instruct
    [ConfigKey("Evol-Instruct: evolution rounds; each round evolves every pool instruction once.", Min = 1, Max = 100)]
    public int EvolRounds { get; set; } = 4;
    [ConfigKey("Evol-Instruct: operations drawn from (add_constraints, deepening, concretizing, increase_reasoning, complicate_input, breadth).")]
    public List<string> EvolOperations { get; set; } = ["add_constraints", "deepening", "concretizing", "increase_reasoning", "complicate_input", "breadth"];
    [ConfigKey("Evol-Instruct: fewest words a response needs to survive elimination.", Min = 0)]
    public int EvolMinResponseWords { get; set; } = 3;
    [ConfigKey("Evol-Instruct: topic clusters over instruction embeddings; in-breadth evolution draws its parents from the sparsest.", Min = 1, Max = 1000)]
    public int EvolClusters { get; set; } = 8;

    // ---- quality control (refine)
    [ConfigKey("Quality control as the last stage of self-instruct and evol-instruct (itune synth refine runs it alone).")]
    public bool Refine { get; set; } = true;
    [ConfigKey("Coherence (cosine of instruction and response embeddings) below this rejects.", Min = -1, Max = 1)]
    public double RejectCoherence { get; set; } = -1;
    [ConfigKey("Coherence below this flags for review.", Min = -1, Max = 1)]
    public double FlagCoherence { get; set; } = 0;
    [ConfigKey("Task alignment (judge score 1-10 through the endpoint, the IRS rubric) below this rejects; 0 = alignment not judged.", Min = 0, Max = 10)]
    public double RejectAlignment { get; set; } = 3;
    [ConfigKey("Task alignment below this flags for review.", Min = 0, Max = 10)]
    public double FlagAlignment { get; set; } = 6;
    [ConfigKey("Ask the endpoint whether the response contradicts itself or the instruction; yes flags for review.")]
    public bool CheckContradiction { get; set; } = true;
    [ConfigKey("Regular expressions (.NET syntax) every response must match; a miss flags for review.")]
    public List<string> FormatPatterns { get; set; } = [];
    [ConfigKey("JSONL/JSON of known good examples (alpaca fields); best similarity to them below reference_flag flags for review; empty = off.")]
    public string Reference { get; set; } = "";
    [ConfigKey("Reference similarity (cosine of embeddings) below which an item is flagged.", Min = -1, Max = 1)]
    public double ReferenceFlag { get; set; } = 0.1;
    [ConfigKey("Complexity balance: accepted items of one level (simple, conditional, multi-step) are capped at this multiple of the rarest non-empty level; the rest go to review (0 = off).", Min = 0)]
    public double BalanceRatio { get; set; } = 0;
}
