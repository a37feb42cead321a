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
    [ConfigKey("Sampling temperature of generation requests (judgement requests use 0).", Min = 0, Max = 2)]
    public double Temperature { get; set; } = 0.7;
    [ConfigKey("Nucleus sampling top_p of generation requests (Self-Instruct used 0.5).", Min = 0, Max = 1, MinExclusive = true)]
    public double TopP { get; set; } = 0.5;
    [ConfigKey("max_tokens of each generation request.", Min = 1)]
    public int MaxTokens { get; set; } = 1024;
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
    [ConfigKey("Self-Instruct: drop a whole answer cut at max_tokens (the paper); false drops only its unfinished last item.")]
    public bool DropTruncated { get; set; } = true;
    [ConfigKey("Self-Instruct: an input-first answer without Example/Output markers becomes one input-less instance (for chat models) instead of none (the paper).")]
    public bool LenientInstances { get; set; }
}
