namespace InstructTune.Evaluation.Judge;

/// <summary>
/// Where and how to reach the judge model. <see cref="ApiKey"/> is never printed: <see cref="ToString"/> redacts
/// it and nothing in the judge logs it. Defaults keep a run bounded: at most <see cref="MaxAttempts"/> requests
/// per judgement, each cut at <see cref="AttemptTimeout"/>, Retry-After honoured up to <see cref="MaxRetryAfter"/>.
/// </summary>
public sealed record JudgeConfig
{
    public string BaseUrl { get; init; } = "https://api.openai.com/v1";
    public string Model { get; init; } = "gpt-4o-mini";
    public string? ApiKey { get; init; }
    public int MaxAttempts { get; init; } = 4;
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(60);
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan MaxRetryAfter { get; init; } = TimeSpan.FromSeconds(60);
    public int MaxConcurrency { get; init; } = 4;
    /// <summary>Whole-run limit; judgements not done by then are reported failed, not dropped.</summary>
    public TimeSpan? Deadline { get; init; }
    /// <summary>Most bytes of a response body read from the endpoint; a longer body fails the attempt (not retried).</summary>
    public long MaxResponseBytes { get; init; } = 1 << 20;
    /// <summary>Ask for a JSON object answer (OpenAI response_format json_object) where the server supports it.</summary>
    public bool JsonMode { get; init; }
    /// <summary>JSONL cache of successful judgements; null disables caching.</summary>
    public string? CachePath { get; init; }

    /// <summary>Fills BaseUrl and ApiKey from OPENAI_BASE_URL / OPENAI_API_KEY (and Model from OPENAI_MODEL) where
    /// this config leaves them at their defaults.</summary>
    public JudgeConfig WithEnvironment(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        return this with
        {
            BaseUrl = getEnv("OPENAI_BASE_URL") is { Length: > 0 } url && BaseUrl == new JudgeConfig().BaseUrl ? url : BaseUrl,
            ApiKey = ApiKey ?? getEnv("OPENAI_API_KEY"),
            Model = getEnv("OPENAI_MODEL") is { Length: > 0 } m && Model == new JudgeConfig().Model ? m : Model,
        };
    }

    public override string ToString() =>
        $"JudgeConfig {{ BaseUrl = {BaseUrl}, Model = {Model}, ApiKey = {(ApiKey is null ? "(none)" : "***")}, " +
        $"MaxAttempts = {MaxAttempts}, AttemptTimeout = {AttemptTimeout}, Cache = {CachePath ?? "(off)"} }}";
}
