// itune serve: an OpenAI-compatible HTTP server over a checkpoint and its LoRA adapters (issue 14). The model,
// batching and text assembly live in the library (Serving/); the HTTP layer in Serve/ServeHost.cs.
using System.CommandLine;
using InstructTune.Cli.Serve;
using InstructTune.Serving;
using Microsoft.Extensions.Hosting;

namespace InstructTune.Cli.Commands;

public static class ServeCommands
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "checkpoint folder (with its tokenizer)", Required = true };
        var adapters = new Option<string[]>("--adapter") { Description = "NAME=DIR: a PEFT LoRA folder served as model NAME (repeatable)", AllowMultipleArgumentsPerToken = false };
        var host = new Option<string>("--host") { Description = "address to bind (loopback by default)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "port (0 = any free port)", DefaultValueFactory = _ => 8000 };
        var keyEnv = new Option<string?>("--api-key-env") { Description = "environment variable holding the bearer key clients must send" };
        var name = new Option<string?>("--served-model-name") { Description = "model name of the base (default: the folder name)" };
        var template = new Option<string?>("--chat-template") { Description = ".jinja chat template instead of the tokenizer's" };
        var maxConcurrent = new Option<int>("--max-concurrent") { Description = "sequences decoded together", DefaultValueFactory = _ => 16 };
        var maxQueue = new Option<int>("--max-queue") { Description = "sequences waiting for a slot before 429", DefaultValueFactory = _ => 64 };
        var maxTokens = new Option<int>("--max-tokens-limit") { Description = "largest max_tokens a request may ask for", DefaultValueFactory = _ => 4096 };
        var defTokens = new Option<int>("--default-max-tokens") { Description = "max_tokens when a request gives none", DefaultValueFactory = _ => 256 };
        var timeout = new Option<double>("--request-timeout") { Description = "seconds a request may take (queueing included)", DefaultValueFactory = _ => 300 };
        var maxBytes = new Option<long>("--max-request-bytes") { Description = "largest request body (413 beyond)", DefaultValueFactory = _ => 1 << 20 };
        var allowLoad = new Option<bool>("--allow-adapter-loading") { Description = "enable POST /v1/adapters {name, path}" };
        var logPrompts = new Option<bool>("--log-prompts") { Description = "write prompt and completion text into the logs" };
        var cmd = new Command("serve", "Serve a model and its LoRA adapters over an OpenAI-compatible HTTP API")
            { model, adapters, host, port, keyEnv, name, template, maxConcurrent, maxQueue, maxTokens, defTokens, timeout, maxBytes, allowLoad, logPrompts };
        cmd.SetAction(p =>
        {
            {
                var named = (p.GetValue(adapters) ?? []).Select(a =>
                {
                    int eq = a.IndexOf('=');
                    if (eq <= 0 || eq == a.Length - 1) throw new ArgumentException($"--adapter {a}: expected NAME=DIR");
                    return (a[..eq], a[(eq + 1)..]);
                }).ToList();
                string? key = null;
                if (p.GetValue(keyEnv) is { } env)
                {
                    key = Environment.GetEnvironmentVariable(env);
                    if (string.IsNullOrEmpty(key)) throw new ArgumentException($"--api-key-env {env}: the variable is not set or empty");
                }
                string h = p.GetValue(host)!;
                if (h != "localhost" && !System.Net.IPAddress.TryParse(h, out _)) throw new ArgumentException($"--host {h}: not an IP address or localhost");
                var limits = new ServeLimits
                {
                    MaxConcurrent = p.GetValue(maxConcurrent),
                    MaxQueue = p.GetValue(maxQueue),
                    MaxTokensLimit = p.GetValue(maxTokens),
                    DefaultMaxTokens = p.GetValue(defTokens),
                    RequestTimeout = TimeSpan.FromSeconds(p.GetValue(timeout)),
                    MaxRequestBytes = p.GetValue(maxBytes),
                };
                limits.Validate();
                using var served = ServedModel.Load(p.GetValue(model)!, named, limits, p.GetValue(name), p.GetValue(template));
                var app = ServeHost.Build(served, new ServeHostOptions
                {
                    Host = h, Port = p.GetValue(port), ApiKey = key,
                    AllowAdapterLoading = p.GetValue(allowLoad), LogPrompts = p.GetValue(logPrompts),
                });
                app.Start();
                Console.Error.WriteLine($"serving {string.Join(", ", served.ModelNames)} at {ServeHost.BoundUrl(app)}/v1 (Ctrl+C stops)");
                if (!System.Net.IPAddress.TryParse(h, out var ip) || !System.Net.IPAddress.IsLoopback(ip))
                    Console.Error.WriteLine(key == null ? "warning: listening beyond loopback without --api-key-env" : $"note: listening on {h}");
                app.WaitForShutdown();
                return 0;
            }
        });
        return cmd;
    }
}
