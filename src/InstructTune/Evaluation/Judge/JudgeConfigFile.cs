using System.Globalization;
using InstructTune.Evaluation.Metrics;
using YamlDotNet.RepresentationModel;

namespace InstructTune.Evaluation.Judge;

/// <summary>
/// Reads a judge config YAML (flat mapping): base_url, model, api_key_env (name of the variable holding the key;
/// preferred), api_key, max_attempts, attempt_timeout_s, base_delay_s, max_retry_after_s, max_concurrency,
/// deadline_s, cache. Unknown keys and wrong types are errors naming file, line and key. Values left out keep
/// their defaults; the environment (OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL) fills what the file leaves.
/// </summary>
public static class JudgeConfigFile
{
    public static JudgeConfig Load(string path, Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        if (!File.Exists(path)) throw new EvalInputException($"{path}: judge config not found");
        var yamlText = Training.Config.YamlDepthGuard.ReadFile(path);
        var yaml = new YamlStream();
        try
        {
            using var reader = new StringReader(yamlText);
            yaml.Load(reader);
        }
        catch (YamlDotNet.Core.YamlException ex) { throw new EvalInputException($"{path}:{ex.Start.Line}: {ex.Message}"); }
        var config = new JudgeConfig();
        if (yaml.Documents.Count == 0) return config.WithEnvironment(getEnv);
        if (yaml.Documents[0].RootNode is not YamlMappingNode map)
            throw new EvalInputException($"{path}: the judge config must be a mapping of key: value");
        foreach (var (k, v) in map.Children)
        {
            var key = ((YamlScalarNode)k).Value ?? "";
            var text = (v as YamlScalarNode)?.Value ?? throw Error(k, key, "must be a single value");
            config = key switch
            {
                "base_url" => config with { BaseUrl = text },
                "model" => config with { Model = text },
                "api_key" => config with { ApiKey = text },
                "api_key_env" => config with { ApiKey = getEnv(text) ?? throw Error(k, key, $"environment variable {text} is not set") },
                "max_attempts" => config with { MaxAttempts = Int(k, key, text, 1) },
                "max_concurrency" => config with { MaxConcurrency = Int(k, key, text, 1) },
                "attempt_timeout_s" => config with { AttemptTimeout = Seconds(k, key, text) },
                "base_delay_s" => config with { BaseDelay = Seconds(k, key, text) },
                "max_retry_after_s" => config with { MaxRetryAfter = Seconds(k, key, text) },
                "deadline_s" => config with { Deadline = Seconds(k, key, text) },
                "cache" => config with { CachePath = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, text)) },
                _ => throw Error(k, key, "unknown key (known: base_url, model, api_key_env, api_key, max_attempts, max_concurrency, attempt_timeout_s, base_delay_s, max_retry_after_s, deadline_s, cache)"),
            };
        }
        return config.WithEnvironment(getEnv);

        EvalInputException Error(YamlNode node, string key, string what) => new($"{path}:{node.Start.Line}: {key}: {what}");

        int Int(YamlNode node, string key, string text, int min) =>
            int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= min ? n
                : throw Error(node, key, $"expected an integer ≥ {min}, got '{text}'");

        TimeSpan Seconds(YamlNode node, string key, string text) =>
            double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s >= 0 ? TimeSpan.FromSeconds(s)
                : throw Error(node, key, $"expected seconds ≥ 0, got '{text}'");
    }
}
