// itune serve: an OpenAI-compatible HTTP server over a checkpoint and its LoRA adapters (issue 14). Settings come
// from the `serve:` section of a config file (--config, key=value overrides) and from options, options winning.
// The model, batching and text assembly live in the library (Serving/); the HTTP layer in Serve/ServeHost.cs.
using System.CommandLine;
using InstructTune.Cli.Serve;
using InstructTune.Serving;
using InstructTune.Training.Config;
using Microsoft.Extensions.Hosting;

namespace InstructTune.Cli.Commands;

public static class ServeCommands
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "YAML config whose model.path and serve: section to use" };
        var overrides = new Argument<string[]>("overrides") { Description = "key=value overrides, e.g. serve.max_concurrent=8", Arity = ArgumentArity.ZeroOrMore };
        var model = new Option<string?>("--model") { Description = "checkpoint folder with its tokenizer (model.path)" };
        var adapters = new Option<string[]>("--adapter") { Description = "NAME=DIR: a PEFT LoRA folder served as model NAME (repeatable; serve.adapters); any other adapter type (DoRA, IA3, prompt or prefix tuning, IaSFT, iPEFT, IAPT, HINT) is served alone, as the model NAME", AllowMultipleArgumentsPerToken = false };
        var host = new Option<string?>("--host") { Description = "address to bind (serve.host, default 127.0.0.1)" };
        var port = new Option<int?>("--port") { Description = "port, 0 = any free port (serve.port, default 8000)" };
        var keyEnv = new Option<string?>("--api-key-env") { Description = "environment variable holding the bearer key (serve.api_key_env)" };
        var name = new Option<string?>("--served-model-name") { Description = "model name of the base (serve.served_model_name)" };
        var template = new Option<string?>("--chat-template") { Description = ".jinja chat template instead of the tokenizer's (serve.chat_template)" };
        var maxConcurrent = new Option<int?>("--max-concurrent") { Description = "sequences decoded together (serve.max_concurrent, default 16)" };
        var maxQueue = new Option<int?>("--max-queue") { Description = "sequences waiting before 429 (serve.max_queue, default 64)" };
        var maxTokens = new Option<int?>("--max-tokens-limit") { Description = "largest max_tokens (serve.max_tokens_limit, default 4096)" };
        var defTokens = new Option<int?>("--default-max-tokens") { Description = "max_tokens when none is given (serve.default_max_tokens, default 256)" };
        var timeout = new Option<double?>("--request-timeout") { Description = "seconds per request (serve.request_timeout_s, default 300)" };
        var maxBytes = new Option<long?>("--max-request-bytes") { Description = "largest body, 413 beyond (serve.max_request_bytes, default 1 MiB)" };
        var allowLoad = new Option<bool>("--allow-adapter-loading") { Description = "enable POST /v1/adapters {name, path} (serve.allow_adapter_loading)" };
        var logPrompts = new Option<bool>("--log-prompts") { Description = "write prompt and completion text into the logs (serve.log_prompts)" };
        var cmd = new Command("serve", "Serve a model and its LoRA adapters over an OpenAI-compatible HTTP API")
            { config, overrides, model, adapters, host, port, keyEnv, name, template, maxConcurrent, maxQueue, maxTokens, defTokens, timeout, maxBytes, allowLoad, logPrompts };
        cmd.SetAction(p =>
        {
            var cfg = p.GetValue(config) is { } file || p.GetValue(overrides) is { Length: > 0 }
                ? ConfigLoader.Load<TrainConfig>(p.GetValue(config), p.GetValue(overrides)) : new TrainConfig();
            var s = cfg.Serve;
            string modelDir = p.GetValue(model) ?? (cfg.Model.Path is { Length: > 0 } mp ? mp
                : throw new ArgumentException("give --model DIR (or model.path in --config)"));
            var named = (p.GetValue(adapters) is { Length: > 0 } given ? given : s.Adapters.ToArray()).Select(a =>
            {
                int eq = a.IndexOf('=');
                if (eq <= 0 || eq == a.Length - 1) throw new ArgumentException($"adapter \"{a}\" (--adapter / serve.adapters): expected NAME=DIR");
                return (a[..eq], a[(eq + 1)..]);
            }).ToList();
            string? key = null;
            string env = p.GetValue(keyEnv) ?? s.ApiKeyEnv;
            if (env.Length > 0)
            {
                key = Environment.GetEnvironmentVariable(env);
                if (string.IsNullOrEmpty(key)) throw new ArgumentException($"--api-key-env / serve.api_key_env {env}: the variable is not set or empty");
            }
            string h = p.GetValue(host) ?? s.Host;
            if (h != "localhost" && !System.Net.IPAddress.TryParse(h, out _)) throw new ArgumentException($"--host / serve.host {h}: not an IP address or localhost");
            var limits = new ServeLimits
            {
                MaxConcurrent = p.GetValue(maxConcurrent) ?? s.MaxConcurrent,
                MaxQueue = p.GetValue(maxQueue) ?? s.MaxQueue,
                MaxTokensLimit = p.GetValue(maxTokens) ?? s.MaxTokensLimit,
                DefaultMaxTokens = p.GetValue(defTokens) ?? s.DefaultMaxTokens,
                RequestTimeout = TimeSpan.FromSeconds(p.GetValue(timeout) ?? s.RequestTimeoutS),
                MaxRequestBytes = p.GetValue(maxBytes) ?? s.MaxRequestBytes,
                MaxChoices = s.MaxChoices,
            };
            limits.Validate();
            string? servedName = p.GetValue(name) ?? (s.ServedModelName.Length > 0 ? s.ServedModelName : null);
            string? chatTemplate = p.GetValue(template) ?? (s.ChatTemplate.Length > 0 ? s.ChatTemplate : null);
            using var served = ServedModel.Load(modelDir, named, limits, servedName, chatTemplate, Console.Error.WriteLine);
            foreach (var (m, f) in served.ChatFormats) Console.Error.WriteLine($"model {m}: chat prompt format {f}");
            var app = ServeHost.Build(served, new ServeHostOptions
            {
                Host = h, Port = p.GetValue(port) ?? s.Port, ApiKey = key,
                AllowAdapterLoading = p.GetValue(allowLoad) || s.AllowAdapterLoading,
                LogPrompts = p.GetValue(logPrompts) || s.LogPrompts,
            });
            app.Start();
            Console.Error.WriteLine($"serving {string.Join(", ", served.ModelNames)} at {ServeHost.BoundUrl(app)}/v1 (Ctrl+C stops)");
            if (!System.Net.IPAddress.TryParse(h, out var ip) || !System.Net.IPAddress.IsLoopback(ip))
                Console.Error.WriteLine(key == null ? $"warning: listening on {h} beyond loopback without an API key" : $"note: listening on {h}");
            app.WaitForShutdown();
            return 0;
        });
        return cmd;
    }
}
