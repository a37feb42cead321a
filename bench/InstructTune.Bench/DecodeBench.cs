// bench decode: prefill tokens/s (one prompt of the config's seq length) and single-stream greedy decode
// tokens/s with the KV cache, for configs S/M/L of the engine issue, float32, bf16 and q8_0 weights (written to a
// temp folder with RandomCheckpoint and memory-mapped, as users load them), against two peers:
//   * the same model in PyTorch (bench/peers/torch_decode.py, 2 threads; float32 computed as transformers does, a
//     tuned torch.mv variant, and for bf16 checkpoints also PyTorch computing in bf16, as torch_dtype=bfloat16 does),
//     run first in a child process;
//   * llama.cpp in this process (LlamaCppPeer: the same checkpoint exported to GGUF at the same precision — f32,
//     bf16, q8_0 — same thread count), timed in alternation with ours repeat by repeat, so both see the same
//     machine state; `--no-llamacpp` skips it.
// Everything after an untimed warm-up on every side. One JSON line per result.
// Usage: dotnet run -c Release --project bench/InstructTune.Bench -- decode --config S|M|L [--no-peer] [--no-llamacpp]
//        [--decode-tokens N] [--dtype float32|bfloat16|both|q8_0|all] [--repeats R] [--threads N] [--warmup-s S]
//        … -- decode --tinyllama [--dir DIR]   (scale check: bf16 TinyLlama-1.1B shapes, load + score 128 tokens)
using System.Diagnostics;
using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Models;
using InstructTune.Models.Inference;

namespace InstructTune.Bench;

public static class DecodeBench
{
    /// <summary>The bench model shapes (hidden, layers, heads, KV heads, FFN, vocab, prompt tokens), shared with PrefillBench.</summary>
    internal static readonly Dictionary<string, (int D, int L, int H, int KV, int F, int V, int T)> Configs = new()
    {
        ["S"] = (256, 4, 4, 4, 688, 4096, 256),
        ["M"] = (512, 8, 8, 4, 1376, 8192, 512),
        ["L"] = (768, 12, 12, 12, 2048, 32000, 512),
    };

    /// <summary>Prefills timed per repeat (best kept), on both sides: one prefill of S lasts ~20 ms, so a single
    /// sample per repeat is at the mercy of one scheduler hiccup.</summary>
    private const int PrefillsPerRepeat = 3;

    public static int Run(string[] args)
    {
        if (args.Contains("--tinyllama")) return TinyLlama(args);
        if (Arg(args, "--tinyllama-child") is { } childDir) return TinyLlamaChild(childDir);
        string config = Arg(args, "--config") ?? "S";
        bool noPeer = args.Contains("--no-peer");
        int decodeTokens = int.Parse(Arg(args, "--decode-tokens") ?? "64");
        int repeats = int.Parse(Arg(args, "--repeats") ?? "5");
        string dtypes = Arg(args, "--dtype") ?? "both";
        double warmupS = double.Parse(Arg(args, "--warmup-s") ?? "2", System.Globalization.CultureInfo.InvariantCulture);
        if (Arg(args, "--threads") is { } th) InstructTune.Engine.Kernels.Parallel2.Threads = int.Parse(th);
        if (!Configs.TryGetValue(config, out var k)) { Console.Error.WriteLine($"unknown config {config} (S, M, L)"); return 2; }
        var cfg = new LlamaConfig
        {
            ModelType = "llama", HiddenSize = k.D, NumHiddenLayers = k.L, NumAttentionHeads = k.H, NumKeyValueHeads = k.KV,
            IntermediateSize = k.F, VocabSize = k.V, RmsNormEps = 1e-5, MaxPositionEmbeddings = 4096,
        };

        // Two PyTorch peers: "hf" computes as transformers' Llama does (the ratio the issue asks for), "tuned" is
        // the fastest plain PyTorch for one token (torch.mv), reported beside it so the margin is not overstated.
        JsonElement? peer = noPeer ? null : RunPeer(config, decodeTokens, repeats, warmupS, "hf");
        JsonElement? tuned = noPeer ? null : RunPeer(config, decodeTokens, repeats, warmupS, "tuned");
        double? peerPrefill = peer?.GetProperty("prefill_tokens_per_s").GetDouble();
        double? peerDecode = peer?.GetProperty("decode_tokens_per_s").GetDouble();
        double? tunedPrefill = tuned?.GetProperty("prefill_tokens_per_s").GetDouble();
        double? tunedDecode = tuned?.GetProperty("decode_tokens_per_s").GetDouble();
        if (peer != null) Console.WriteLine($"pytorch {config} (hf): prefill {peerPrefill:F1} tok/s, decode {peerDecode:F1} tok/s");
        if (tuned != null) Console.WriteLine($"pytorch {config} (tuned): prefill {tunedPrefill:F1} tok/s, decode {tunedDecode:F1} tok/s");

        // --dtype q8_0: the float32 checkpoint converted as `itune convert --dtype q8_0` does (ggml's q8_0 blocks,
        // memory-mapped and streamed in place), the same weights llama.cpp gets as a q8_0 GGUF.
        bool noCpp = args.Contains("--no-llamacpp");
        var runs = dtypes switch
        {
            "both" => new[] { "float32", "bfloat16" },
            "all" => ["float32", "bfloat16", "q8_0"],
            _ => [dtypes],
        };
        foreach (var dtName in runs)
        {
            bool q8 = dtName == "q8_0";
            var dtype = q8 ? DType.F32 : LlamaCheckpoint.ParseDtype(dtName);
            // A bf16 checkpoint has a third PyTorch reading: torch_dtype=bfloat16, which computes in bf16 (activations
            // rounded; not the float32 numbers this engine and the two peers above compute) on the CPU's bf16 dot
            // products where it has them. Reported beside the others, not instead of them.
            JsonElement? bf16Peer = noPeer || dtype != DType.BF16 ? null : RunPeer(config, decodeTokens, repeats, warmupS, "hf", "bfloat16");
            double? bf16PeerPrefill = bf16Peer?.GetProperty("prefill_tokens_per_s").GetDouble();
            double? bf16PeerDecode = bf16Peer?.GetProperty("decode_tokens_per_s").GetDouble();
            if (bf16Peer != null) Console.WriteLine($"pytorch {config} (hf, bf16 compute): prefill {bf16PeerPrefill:F1} tok/s, decode {bf16PeerDecode:F1} tok/s");
            string dir = Directory.CreateTempSubdirectory("itune-decode-bench-").FullName;
            try
            {
                RandomCheckpoint.Create(cfg, dir, 0, dtype);
                string ggufDtype = q8 ? "q8_0" : dtype == DType.BF16 ? "bf16" : "f32";
                using var cpp = noCpp ? null : LlamaCppPeer.Open(dir, ggufDtype, k.T + decodeTokens + 16, InstructTune.Engine.Kernels.Parallel2.Threads);
                string modelDir = dir;
                if (q8) CheckpointConverter.ConvertQ8_0(dir, modelDir = Path.Combine(dir, "q8_0"));
                using var model = InferenceModel.Load(modelDir);
                var rng = new Random(1);
                var prompt = Enumerable.Range(0, k.T).Select(_ => rng.Next(k.V)).ToArray();
                double prefill = 0, decode = 0, cpuMs = double.MaxValue, cppPrefill = 0, cppDecode = 0, cppCpuMs = double.MaxValue;
                // Warm-up, untimed: the JIT's tiering (tier 0 → instrumented → optimised) takes a few hundred ms of
                // calls to settle, and timing it measures the JIT rather than the kernels. BenchmarkDotNet does the same.
                var warm = Stopwatch.StartNew();
                while (warm.Elapsed.TotalSeconds < warmupS)
                {
                    var cache = model.CreateCache(k.T + decodeTokens + 16);
                    var logits = model.Forward([new SequenceChunk(cache, prompt)]);
                    for (int i = 0; i < decodeTokens; i++)
                        logits = model.Forward([new SequenceChunk(cache, [InstructTune.Generation.LogitsSampler.ArgMax(logits)])]);
                }
                if (cpp != null)
                {
                    warm.Restart();
                    while (warm.Elapsed.TotalSeconds < warmupS) { cpp.Prefill(prompt); cpp.Decode(prompt[..16], decodeTokens); }
                }
                double streamBefore = BandwidthProbe.MeasureGBs();
                for (int r = 0; r < repeats; r++)
                {
                    var cache = model.CreateCache(k.T + decodeTokens + 16);
                    var sw = new Stopwatch();
                    for (int p = 0; p < PrefillsPerRepeat; p++)
                    {
                        cache.Clear();
                        sw.Restart();
                        model.Forward([new SequenceChunk(cache, prompt)]);
                        prefill = Math.Max(prefill, k.T / sw.Elapsed.TotalSeconds);
                    }

                    cache.Clear();
                    var logits = model.Forward([new SequenceChunk(cache, prompt[..16])]);
                    sw.Restart();
                    var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                    for (int i = 0; i < decodeTokens; i++)
                    {
                        int next = InstructTune.Generation.LogitsSampler.ArgMax(logits);
                        logits = model.Forward([new SequenceChunk(cache, [next])]);
                    }
                    decode = Math.Max(decode, decodeTokens / sw.Elapsed.TotalSeconds);
                    // CPU time per token: on a shared machine this shows what the kernels cost when not descheduled.
                    cpuMs = Math.Min(cpuMs, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / decodeTokens);
                    if (cpp == null) continue;
                    // llama.cpp right after ours, in the same repeat: the same machine state for both.
                    for (int p = 0; p < PrefillsPerRepeat; p++) cppPrefill = Math.Max(cppPrefill, cpp.Prefill(prompt));
                    var (tps, ms) = cpp.Decode(prompt[..16], decodeTokens);
                    cppDecode = Math.Max(cppDecode, tps);
                    cppCpuMs = Math.Min(cppCpuMs, ms);
                }
                double streamGBs = Math.Max(streamBefore, BandwidthProbe.MeasureGBs());
                long streamedBytes = StreamedBytesPerToken(model);
                double decodeGBs = streamedBytes * decode / 1e9;
                string dt = q8 ? "q8_0" : LlamaCheckpoint.TorchDtypeName(dtype);
                double weightMib = model.WeightBytes / 1048576.0, modelRssMib = InstructTune.Common.MappedMemory.ResidentBytes(modelDir) / 1048576.0;
                double? cppP = cpp != null ? cppPrefill : null, cppD = cpp != null ? cppDecode : null;
                Console.WriteLine($"{config} {dt}: prefill {prefill:F1} tok/s{Ratio(prefill, peerPrefill, tunedPrefill, bf16PeerPrefill, cppP, ggufDtype)}, " +
                                  $"decode {decode:F1} tok/s{Ratio(decode, peerDecode, tunedDecode, bf16PeerDecode, cppD, ggufDtype)} (CPU {cpuMs:F2} ms/token)" +
                                  $"; weights {weightMib:F1} MiB, resident weights {modelRssMib:F1} MiB");
                if (cpp != null)
                    Console.WriteLine($"{config} llama.cpp {ggufDtype} (same checkpoint as GGUF, {cpp.GgufBytes / 1048576.0:F1} MiB, {InstructTune.Engine.Kernels.Parallel2.Threads} threads, " +
                                      $"alternated with ours): prefill {cppPrefill:F1} tok/s, decode {cppDecode:F1} tok/s (CPU {cppCpuMs:F2} ms/token)");
                Console.WriteLine($"{config} {dt}: decode streams {streamedBytes / 1e6:F1} MB/token = {decodeGBs:F1} GB/s; " +
                                  $"machine read bandwidth around the run {streamGBs:F1} GB/s ({decodeGBs / streamGBs:P0} of it)" +
                                  (peerDecode is double pd ? $"; 3× the PyTorch peer would need {3 * pd * streamedBytes / 1e9:F1} GB/s" : ""));
                Emit("prefill", config, dt, prefill, peerPrefill, tunedPrefill, bf16PeerPrefill, cppP, ggufDtype, weightMib, modelRssMib);
                Emit("decode", config, dt, decode, peerDecode, tunedDecode, bf16PeerDecode, cppD, ggufDtype, weightMib, modelRssMib, cpuMs, (decodeGBs, streamGBs),
                    cpp != null ? cppCpuMs : null);
            }
            finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
        }
        return 0;
    }

    /// <summary>The scale check: a random bf16 TinyLlama-1.1B-shaped checkpoint (as `itune init` writes it) is
    /// loaded and scores 128 tokens in a fresh process, whose peak RSS is compared with the file size.</summary>
    private static int TinyLlama(string[] args)
    {
        var cfg = new LlamaConfig
        {
            ModelType = "llama", VocabSize = 32000, HiddenSize = 2048, IntermediateSize = 5632, NumHiddenLayers = 22,
            NumAttentionHeads = 32, NumKeyValueHeads = 4, RmsNormEps = 1e-5, MaxPositionEmbeddings = 2048,
            BosTokenId = 1, EosTokenIds = [2],
        };
        string dir = Arg(args, "--dir") ?? Directory.CreateTempSubdirectory("itune-tinyllama-").FullName;
        bool keep = Arg(args, "--dir") != null;
        try
        {
            var sw = Stopwatch.StartNew();
            if (!File.Exists(Path.Combine(dir, "model.safetensors"))) RandomCheckpoint.Create(cfg, dir, 0, DType.BF16);
            double initS = sw.Elapsed.TotalSeconds;
            long fileBytes = new FileInfo(Path.Combine(dir, "model.safetensors")).Length;
            // Under `dotnet bench.dll` the child needs the dll path; under the apphost (`dotnet run`) it must not get it.
            bool viaMuxer = Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet";
            string[] childArgs = viaMuxer ? [typeof(DecodeBench).Assembly.Location, "decode", "--tinyllama-child", dir] : ["decode", "--tinyllama-child", dir];
            var psi = new ProcessStartInfo(Environment.ProcessPath!, childArgs) { RedirectStandardOutput = true };
            using var proc = Process.Start(psi)!;
            string line = proc.StandardOutput.ReadToEnd().Split('\n').Last(l => l.StartsWith('{'));
            proc.WaitForExit();
            var child = JsonDocument.Parse(line).RootElement;
            double peak = child.GetProperty("peak_rss_mib").GetDouble(), fileMib = fileBytes / 1048576.0;
            var o = new Dictionary<string, object?>
            {
                ["bench"] = "tinyllama", ["dtype"] = "bfloat16", ["file_mib"] = Math.Round(fileMib, 1), ["init_s"] = Math.Round(initS, 1),
                ["load_s"] = child.GetProperty("load_s").GetDouble(), ["score_128_s"] = child.GetProperty("score_s").GetDouble(),
                ["peak_rss_mib"] = peak, ["rss_over_file"] = Math.Round(peak / fileMib, 3), ["loss"] = child.GetProperty("loss").GetDouble(),
            };
            Console.WriteLine($"TinyLlama-1.1B bf16: file {fileMib:F0} MiB, load {o["load_s"]} s, score 128 tokens {o["score_128_s"]} s, peak RSS {peak:F0} MiB = {o["rss_over_file"]}× file");
            Console.WriteLine(JsonSerializer.Serialize(o));
            return 0;
        }
        finally { if (!keep) try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    private static int TinyLlamaChild(string dir)
    {
        var sw = Stopwatch.StartNew();
        using var model = InferenceModel.Load(dir);
        double load = sw.Elapsed.TotalSeconds;
        var rng = new Random(3);
        var ids = Enumerable.Range(0, 128).Select(_ => rng.Next(model.Config.VocabSize)).ToArray();
        sw.Restart();
        var r = Scorer.Score(model, [ids])[0];
        double score = sw.Elapsed.TotalSeconds;
        using var p = Process.GetCurrentProcess();
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["load_s"] = Math.Round(load, 2), ["score_s"] = Math.Round(score, 2),
            ["peak_rss_mib"] = Math.Round(p.PeakWorkingSet64 / 1048576.0, 1), ["loss"] = Math.Round(r.Loss!.Value, 4),
        }));
        return 0;
    }

    private static string Ratio(double v, double? peer, double? tuned, double? bf16Peer, double? cpp, string cppDtype)
    {
        var parts = new List<string>();
        if (cpp is double c && c > 0) parts.Add($"{v / c:F2}× llama.cpp {cppDtype}");
        if (peer is double p && p > 0) parts.Add($"{v / p:F2}× pytorch");
        if (tuned is double t && t > 0) parts.Add($"{v / t:F2}× tuned pytorch");
        if (bf16Peer is double b && b > 0) parts.Add($"{v / b:F2}× pytorch bf16 compute");
        return parts.Count == 0 ? "" : $" ({string.Join(", ", parts)})";
    }

    private static void Emit(string bench, string config, string dtype, double tps, double? peer, double? tuned, double? bf16Peer, double? llamaCpp,
        string llamaCppDtype, double weightMib, double rssMib, double? cpuMs = null, (double Decode, double Machine)? gbs = null, double? llamaCppCpuMs = null)
    {
        var o = new Dictionary<string, object?>
        {
            ["bench"] = bench, ["config"] = config, ["dtype"] = dtype, ["tokens_per_s"] = Math.Round(tps, 1),
            ["weight_mib"] = Math.Round(weightMib, 1), ["weights_rss_mib"] = Math.Round(rssMib, 1),
        };
        if (cpuMs is double c) o["cpu_ms_per_token"] = Math.Round(c, 3);
        if (gbs is var (dg, mg)) { o["decode_gbs"] = Math.Round(dg, 1); o["machine_read_gbs"] = Math.Round(mg, 1); }
        if (peer is double p)
        {
            o["peer"] = "pytorch"; o["peer_tokens_per_s"] = p; o["ratio"] = Math.Round(tps / p, 2);
        }
        if (tuned is double t) { o["tuned_peer_tokens_per_s"] = t; o["ratio_tuned"] = Math.Round(tps / t, 2); }
        if (bf16Peer is double bp) { o["bf16_peer_tokens_per_s"] = bp; o["ratio_bf16_peer"] = Math.Round(tps / bp, 2); }
        if (llamaCpp is double l)
        {
            o["llamacpp_dtype"] = llamaCppDtype; o["llamacpp_tokens_per_s"] = Math.Round(l, 1); o["ratio_llamacpp"] = Math.Round(tps / l, 2);
            if (llamaCppCpuMs is double lc) o["llamacpp_cpu_ms_per_token"] = Math.Round(lc, 3);
        }
        Console.WriteLine(JsonSerializer.Serialize(o));
    }

    /// <summary>Weight bytes one decode step reads: every matrix once, but only one row of an untied embedding.</summary>
    private static long StreamedBytesPerToken(InferenceModel model)
    {
        bool tied = ReferenceEquals(model.Embed, model.LmHead);
        return model.WeightBytes - (tied ? 0 : model.Embed.ByteLength - model.Embed.ByteLength / model.Embed.Rows);
    }

    internal static JsonElement? RunPeer(string config, int decodeTokens, int repeats, double warmupS, string style, string dtype = "float32")
    {
        string script = Path.Combine(RepoRoot(), "bench", "peers", "torch_decode.py");
        if (!File.Exists("/usr/bin/python3") || !File.Exists(script)) { Console.Error.WriteLine("no python3/peer script: skipping the PyTorch peer"); return null; }
        var psi = new ProcessStartInfo("/usr/bin/python3", [script, "--config", config, "--decode-tokens", decodeTokens.ToString(), "--repeats", repeats.ToString(), "--warmup-s", warmupS.ToString(System.Globalization.CultureInfo.InvariantCulture), "--style", style, "--dtype", dtype])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        TorchPeerSettings.Apply(psi);
        using var proc = Process.Start(psi)!;
        string output = proc.StandardOutput.ReadToEnd();
        string err = proc.StandardError.ReadToEnd();
        proc.WaitForExit();
        var line = output.Split('\n').LastOrDefault(l => l.StartsWith('{'));
        if (proc.ExitCode != 0 || line == null) { Console.Error.WriteLine($"PyTorch peer failed: {err}"); return null; }
        return JsonDocument.Parse(line).RootElement.Clone();
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "InstructTune.sln"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }

    private static string? Arg(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
