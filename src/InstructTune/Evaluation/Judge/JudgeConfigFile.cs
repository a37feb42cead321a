using InstructTune.Evaluation.Metrics;
using InstructTune.Training.Config;

namespace InstructTune.Evaluation.Judge;

/// <summary>
/// The keys of a judge config file (`itune eval judge --config`, `eval model --judge`): a flat mapping bound by
/// the one config binder, so unknown keys, wrong types and out-of-range values are refused naming file, line and
/// key, like every other config. Values left out keep their defaults; the environment (OPENAI_BASE_URL,
/// OPENAI_API_KEY, OPENAI_MODEL) fills what the file leaves.
/// </summary>
public sealed class JudgeSection
{
    [ConfigKey("Base URL of the OpenAI-compatible chat endpoint (default: OPENAI_BASE_URL, else api.openai.com).")]
    public string BaseUrl { get; set; } = "";
    [ConfigKey("Judge model name (default: OPENAI_MODEL, else gpt-4o-mini).")]
    public string Model { get; set; } = "";
    [ConfigKey("Name of the environment variable holding the API key (preferred to api_key).")]
    public string ApiKeyEnv { get; set; } = "";
    [ConfigKey("The API key itself (default: OPENAI_API_KEY).")]
    public string ApiKey { get; set; } = "";
    [ConfigKey("Tries per judgement (retries on 429/5xx/timeouts with exponential backoff).", Min = 1)]
    public int MaxAttempts { get; set; } = 4;
    [ConfigKey("Judgements in flight at once.", Min = 1)]
    public int MaxConcurrency { get; set; } = 4;
    [ConfigKey("Seconds before one attempt is abandoned.", Min = 0)]
    public double AttemptTimeoutS { get; set; } = 60;
    [ConfigKey("First backoff delay in seconds (doubles per retry, with jitter).", Min = 0)]
    public double BaseDelayS { get; set; } = 1;
    [ConfigKey("Longest Retry-After in seconds that is honoured.", Min = 0)]
    public double MaxRetryAfterS { get; set; } = 60;
    [ConfigKey("Whole-run limit in seconds; judgements not done by then are reported failed (0 = none).", Min = 0)]
    public double DeadlineS { get; set; }
    [ConfigKey("Most bytes of a response body read from the endpoint; a longer body fails the attempt and is not retried.", Min = 1024)]
    public long MaxResponseBytes { get; set; } = 1 << 20;
    [ConfigKey("Ask the endpoint for a JSON object answer (OpenAI response_format json_object) where it supports it.")]
    public bool JsonMode { get; set; }
    [ConfigKey("JSONL cache of successful judgements, relative to the config file (empty = no cache).")]
    public string Cache { get; set; } = "";
}

public static class JudgeConfigFile
{
    /// <summary>An absolute http:// or https:// URL with a host.</summary>
    public static bool IsHttpUrl(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var u) && u.Scheme is "http" or "https" && u.Host.Length > 0;

    public static JudgeConfig Load(string path, Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        if (!File.Exists(path)) throw new EvalInputException($"{path}: judge config not found");
        JudgeSection s;
        try { s = ConfigLoader.Load<JudgeSection>(path); }
        catch (ConfigException e) { throw new EvalInputException(e.Message); }
        var dflt = new JudgeConfig();
        var config = new JudgeConfig
        {
            BaseUrl = s.BaseUrl.Length > 0 ? s.BaseUrl : dflt.BaseUrl,
            Model = s.Model.Length > 0 ? s.Model : dflt.Model,
            ApiKey = s.ApiKeyEnv.Length > 0
                ? getEnv(s.ApiKeyEnv) ?? throw new EvalInputException($"{path}: api_key_env: environment variable {s.ApiKeyEnv} is not set")
                : s.ApiKey.Length > 0 ? s.ApiKey : null,
            MaxAttempts = s.MaxAttempts,
            MaxConcurrency = s.MaxConcurrency,
            AttemptTimeout = TimeSpan.FromSeconds(s.AttemptTimeoutS),
            BaseDelay = TimeSpan.FromSeconds(s.BaseDelayS),
            MaxRetryAfter = TimeSpan.FromSeconds(s.MaxRetryAfterS),
            Deadline = s.DeadlineS > 0 ? TimeSpan.FromSeconds(s.DeadlineS) : null,
            CachePath = s.Cache.Length > 0 ? Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, s.Cache)) : null,
            MaxResponseBytes = s.MaxResponseBytes,
            JsonMode = s.JsonMode,
        };
        config = config.WithEnvironment(getEnv);
        if (!IsHttpUrl(config.BaseUrl) && !config.BaseUrl.StartsWith(Serving.ChatClients.LocalPrefix, StringComparison.Ordinal))
            throw new EvalInputException($"{path}: base_url: \"{config.BaseUrl}\" is not an http(s) URL such as http://127.0.0.1:8000/v1 (nor local:MODEL_DIR[+ADAPTER_DIR])" +
                                         (s.BaseUrl.Length == 0 ? " (it came from OPENAI_BASE_URL)" : ""));
        return config;
    }
}
