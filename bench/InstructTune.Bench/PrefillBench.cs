// bench prefill: prompt tokens/s of configs S/M/L (one prompt of the config's seq length into an empty KV cache),
// ours with --compute float32 and with the --compute asked for (bf16: activations rounded to bf16, bf16 × bf16
// products accumulated in float32, on oneDNN where the CPU has AVX512-BF16), against PyTorch in the same run:
// computing in bf16 (torch_dtype=bfloat16: weights, activations and caches in bf16) for --compute bf16, else
// float32. Also prints how far bf16 compute moves the logits of every prompt position from our float32 compute.
// Usage: dotnet run -c Release --project bench/InstructTune.Bench -- prefill --config M|L [--dtype bfloat16|float32]
//        [--compute bf16|float32] [--repeats 5] [--warmup-s 2] [--no-peer] [--threads N]
using System.Diagnostics;
using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Engine.Kernels;
using InstructTune.Models;
using InstructTune.Models.Inference;

namespace InstructTune.Bench;

public static class PrefillBench
{
    private static IReadOnlyDictionary<string, (int D, int L, int H, int KV, int F, int V, int T)> Configs => DecodeBench.Configs;

    private const int PrefillsPerRepeat = 3;

    public static int Run(string[] args)
    {
        string config = Arg(args, "--config") ?? "M";
        if (!Configs.TryGetValue(config, out var k)) { Console.Error.WriteLine($"prefill: unknown config {config} (S, M, L)"); return 2; }
        DType dtype;
        InferenceCompute compute;
        try
        {
            dtype = LlamaCheckpoint.ParseDtype(Arg(args, "--dtype") ?? "bfloat16");
            compute = InferenceComputes.Parse(Arg(args, "--compute") ?? "bf16");
        }
        catch (ArgumentException e) { Console.Error.WriteLine($"prefill: {e.Message}"); return 2; }
        int repeats = int.Parse(Arg(args, "--repeats") ?? "5");
        double warmupS = double.Parse(Arg(args, "--warmup-s") ?? "2", System.Globalization.CultureInfo.InvariantCulture);
        if (Arg(args, "--threads") is { } th) Parallel2.Threads = int.Parse(th);
        bool noPeer = args.Contains("--no-peer");
        string dt = LlamaCheckpoint.TorchDtypeName(dtype);
        string computeName = compute == InferenceCompute.Bf16 ? "bf16" : "float32";
        var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "?";
        Console.WriteLine($"prefill bench: config {config} (T={k.T}), weights {dt}, compute {computeName}; " +
                          $"bf16 GEMM backend {Gemm.Bf16Backend}; load average {load}");

        // The peer computing as asked: bf16 compute = torch_dtype=bfloat16 (its matmuls on oneDNN's bf16 kernels).
        string peerDtype = compute == InferenceCompute.Bf16 ? "bfloat16" : "float32";
        JsonElement? peer = noPeer ? null : DecodeBench.RunPeer(config, 2, repeats, warmupS, "hf", peerDtype);
        double? peerPrefill = peer?.GetProperty("prefill_tokens_per_s").GetDouble();
        if (peer != null) Console.WriteLine($"pytorch {config} (hf, {peerDtype} compute): prefill {peerPrefill:F1} tok/s");

        var cfg = new LlamaConfig
        {
            ModelType = "llama", HiddenSize = k.D, NumHiddenLayers = k.L, NumAttentionHeads = k.H, NumKeyValueHeads = k.KV,
            IntermediateSize = k.F, VocabSize = k.V, RmsNormEps = 1e-5, MaxPositionEmbeddings = 4096,
        };
        string dir = Directory.CreateTempSubdirectory("itune-prefill-bench-").FullName;
        try
        {
            RandomCheckpoint.Create(cfg, dir, 0, dtype);
            using var model = InferenceModel.Load(dir);
            var rng = new Random(1);
            var prompt = Enumerable.Range(0, k.T).Select(_ => rng.Next(k.V)).ToArray();

            // Our float32 compute first (the reference for the tolerance and our own ratio), then the asked compute.
            model.Compute = InferenceCompute.Float32;
            var (f32Tps, f32Logits) = Measure(model, prompt, repeats, warmupS, k.T);
            model.Compute = compute;
            var (tps, logits) = Measure(model, prompt, repeats, warmupS, k.T);

            // Distance from float32 compute over every prompt position: the largest |Δlogit| relative to the
            // largest |logit|, and how often the top-1 token agrees.
            int V = k.V, same = 0;
            double maxDiff = 0, maxAbs = 0;
            for (int t = 0; t < k.T; t++)
            {
                var a = f32Logits.AsSpan(t * V, V); var b = logits.AsSpan(t * V, V);
                for (int v = 0; v < V; v++) { maxDiff = Math.Max(maxDiff, Math.Abs(a[v] - b[v])); maxAbs = Math.Max(maxAbs, Math.Abs(a[v])); }
                if (ArgMax(a) == ArgMax(b)) same++;
            }
            double top1 = (double)same / k.T;
            Console.WriteLine($"{config} {dt} compute {computeName}: prefill {tps:F1} tok/s" +
                              (peerPrefill is double p ? $" = {tps / p:F2}× pytorch ({peerDtype} compute, {p:F1})" : "") +
                              $"; our float32 compute {f32Tps:F1} tok/s ({tps / f32Tps:F2}×)");
            Console.WriteLine($"{config} {dt} compute {computeName} vs float32 compute: max |Δlogit| {maxDiff:G3} " +
                              $"(relative to max |logit| {maxAbs:G3}: {maxDiff / maxAbs:P2}), top-1 agreement {top1:P1} of {k.T} positions");
            var o = new Dictionary<string, object?>
            {
                ["bench"] = "prefill", ["config"] = config, ["dtype"] = dt, ["compute"] = computeName,
                ["tokens_per_s"] = Math.Round(tps, 1), ["f32_compute_tokens_per_s"] = Math.Round(f32Tps, 1),
                ["max_abs_logit_diff"] = Math.Round(maxDiff, 5), ["max_abs_logit"] = Math.Round(maxAbs, 4), ["top1_agreement"] = Math.Round(top1, 4),
                ["bf16_gemm_backend"] = Gemm.Bf16Backend.ToString(), ["load_average"] = load,
            };
            if (peerPrefill is double pp) { o["peer"] = $"pytorch-{peerDtype}"; o["peer_tokens_per_s"] = pp; o["ratio"] = Math.Round(tps / pp, 3); }
            Console.WriteLine(JsonSerializer.Serialize(o));
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
        return 0;
    }

    /// <summary>Best prefill tokens/s over repeats × 3 prefills after an untimed warm-up, and the logits of every
    /// prompt position of one prefill.</summary>
    private static (double Tps, float[] Logits) Measure(InferenceModel model, int[] prompt, int repeats, double warmupS, int T)
    {
        var cache = model.CreateCache(T + 8);
        var warm = Stopwatch.StartNew();
        while (warm.Elapsed.TotalSeconds < warmupS) { cache.Clear(); model.Forward([new SequenceChunk(cache, prompt)]); }
        double best = 0;
        var sw = new Stopwatch();
        for (int r = 0; r < repeats * PrefillsPerRepeat; r++)
        {
            cache.Clear();
            sw.Restart();
            model.Forward([new SequenceChunk(cache, prompt)]);
            best = Math.Max(best, T / sw.Elapsed.TotalSeconds);
        }
        cache.Clear();
        var logits = model.Forward([new SequenceChunk(cache, prompt, AllLogits: true)]);
        return (best, logits);
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    private static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
