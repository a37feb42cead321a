// itune serve throughput: requests/s and completion tokens/s at 1, 4 and 16 concurrent clients against a real
// Kestrel server (HTTP on loopback) serving a config-S model (D 256, 4 layers, 4 heads, FFN 688, vocab 4096,
// random weights, float32) with a byte-level BPE tokenizer trained here. Every request: a ~40-token chat prompt,
// max_tokens 64, greedy, no EOS (the model has none), so each request is exactly 64 tokens. The peer is the same
// server at concurrency 1 (sequential requests): the ratio is what continuous batching buys.
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Cli.Serve;
using InstructTune.Models;
using InstructTune.Serving;
using InstructTune.Tokenizers.Training;

namespace InstructTune.Bench;

public static class ServeBench
{
    public static int Run(string[] args)
    {
        int requests = args.SkipWhile(a => a != "--requests").Skip(1).Select(int.Parse).FirstOrDefault(32);
        int maxTokens = args.SkipWhile(a => a != "--max-tokens").Skip(1).Select(int.Parse).FirstOrDefault(64);
        var levels = (args.SkipWhile(a => a != "--concurrency").Skip(1).FirstOrDefault() ?? "1,4,16").Split(',').Select(int.Parse).ToArray();
        string dir = Directory.CreateTempSubdirectory("itune-serve-bench-").FullName;
        try
        {
            var lines = Enumerable.Range(0, 400).Select(i => $"Question {i}: explain why the number {i * 7 % 97} is {(i % 2 == 0 ? "even" : "odd")} and what follows {i}.").ToList();
            var opts = new BpeTrainerOptions(VocabSize: 4096, MinFrequency: 2);
            ByteLevelBpeTrainer.Save(ByteLevelBpeTrainer.Train(lines, opts), opts, dir);
            File.WriteAllText(Path.Combine(dir, "chat_template.jinja"),
                "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}");
            var cfg = new LlamaConfig
            {
                ModelType = "llama", HiddenSize = 256, NumHiddenLayers = 4, NumAttentionHeads = 4, NumKeyValueHeads = 4,
                IntermediateSize = 688, VocabSize = 4096, RmsNormEps = 1e-5, MaxPositionEmbeddings = 1024,
            };
            RandomCheckpoint.Create(cfg, dir, 0, DType.F32);
            using var served = ServedModel.Load(dir, [], new ServeLimits { MaxConcurrent = 16, MaxQueue = 256 }, "S");
            var app = ServeHost.Build(served, new ServeHostOptions { Port = 0, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning });
            app.StartAsync().GetAwaiter().GetResult();
            using var http = new HttpClient { BaseAddress = new Uri(ServeHost.BoundUrl(app)), Timeout = TimeSpan.FromMinutes(10) };
            object Body(int i) => new
            {
                model = "S", max_tokens = maxTokens, temperature = 0,
                messages = new[] { new { role = "user", content = lines[i % lines.Count] + " " + lines[(i + 1) % lines.Count] } },
            };
            async Task<int> One(int i)
            {
                using var r = await http.PostAsJsonAsync("/v1/chat/completions", Body(i));
                r.EnsureSuccessStatusCode();
                var j = await r.Content.ReadFromJsonAsync<JsonElement>();
                return j.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
            }
            One(0).GetAwaiter().GetResult();   // warm-up: JIT, first forward
            One(1).GetAwaiter().GetResult();
            var rows = new List<(int C, double Rps, double Tps, double Wall)>();
            foreach (int c in levels)
            {
                int next = 0, tokens = 0;
                var sw = Stopwatch.StartNew();
                var workers = Enumerable.Range(0, c).Select(async _ =>
                {
                    int i;
                    while ((i = Interlocked.Increment(ref next) - 1) < requests) Interlocked.Add(ref tokens, await One(i));
                }).ToArray();
                Task.WaitAll(workers);
                double s = sw.Elapsed.TotalSeconds;
                rows.Add((c, requests / s, tokens / s, s));
                Console.WriteLine($"serve S: concurrency {c,2}: {requests} requests in {s:F2} s = {requests / s:F2} req/s, {tokens / s:F0} completion tok/s");
            }
            foreach (var r in rows.Skip(1))
                Console.WriteLine($"  concurrency {r.C} vs 1: {r.Tps / rows[0].Tps:F2}x tokens/s");
            app.StopAsync().GetAwaiter().GetResult();
            return 0;
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
