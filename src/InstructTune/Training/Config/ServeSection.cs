namespace InstructTune.Training.Config;

// `serve:` — `itune serve --config FILE [key=value …]` (src/InstructTune/Serving, InstructTune.Cli/Serve). The model
// is `model.path`; the command's own options, when given, win over these keys.

public sealed class ServeSection
{
    [ConfigKey("Address to bind; loopback by default (anything else should have an api_key_env).")]
    public string Host { get; set; } = "127.0.0.1";
    [ConfigKey("TCP port (0 = any free port).", Min = 0, Max = 65535)]
    public int Port { get; set; } = 8000;
    [ConfigKey("Environment variable holding the bearer key every /v1 request must carry; empty = no auth.")]
    public string ApiKeyEnv { get; set; } = "";
    [ConfigKey("Model name of the base in /v1/models and requests; empty = the checkpoint folder's name.")]
    public string ServedModelName { get; set; } = "";
    [ConfigKey("LoRA adapters served as their own model names: NAME=DIR entries (PEFT folders); an iPEFT, IAPT or HINT adapter is served alone, as the model NAME.")]
    public List<string> Adapters { get; set; } = [];
    [ConfigKey("A .jinja chat template instead of the tokenizer's; empty = the tokenizer's.")]
    public string ChatTemplate { get; set; } = "";
    [ConfigKey("Sequences decoded together in one forward pass (continuous batching).", Min = 1)]
    public int MaxConcurrent { get; set; } = 16;
    [ConfigKey("Sequences waiting for a slot; beyond it requests get 429 with Retry-After.", Min = 0)]
    public int MaxQueue { get; set; } = 64;
    [ConfigKey("Largest max_tokens a request may ask for (more is a 400).", Min = 1)]
    public int MaxTokensLimit { get; set; } = 4096;
    [ConfigKey("max_tokens when a request gives none (at most max_tokens_limit).", Min = 1)]
    public int DefaultMaxTokens { get; set; } = 256;
    [ConfigKey("Seconds one request may take, queueing included; at the limit it ends with finish_reason length.", Min = 0, MinExclusive = true)]
    public double RequestTimeoutS { get; set; } = 300;
    [ConfigKey("Largest request body in bytes (413 beyond it).", Min = 1024)]
    public long MaxRequestBytes { get; set; } = 1 << 20;
    [ConfigKey("Largest n (choices per request).", Min = 1)]
    public int MaxChoices { get; set; } = 8;
    [ConfigKey("Enable POST /v1/adapters {name, path} to load adapters while serving.")]
    public bool AllowAdapterLoading { get; set; }
    [ConfigKey("Write prompt and completion text into the request logs (off: ids, sizes and timings only).")]
    public bool LogPrompts { get; set; }
}
