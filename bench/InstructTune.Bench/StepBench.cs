// `step` bench: full training steps (forward, backward, AdamW; float32; 2 threads) of a Llama decoder of
// config S, M or L on random ids; prints tokens/s, model-FLOPs utilisation and peak RSS, then the same model,
// data shape and optimizer in PyTorch (bench/peers/torch_step.py, a separate process) and the ratio.
// Usage: dotnet run -c Release --project bench/InstructTune.Bench -- step --config S|M|L [--no-peer] [--steps N]
//        [--warmup N] [--checkpoint] [--lora] [--attention gemm|block4] [--peak-gflops G]
//        [--precision bf16]: training.precision bf16 (autocast GEMMs), timed after our float32 step in the same run
//        step --profile [--managed]: CPU/wall time of each kernel at config-S shapes (where a step's time goes).
//        step --config M --ranks 1,2 [--repeat K]: data parallel under mpirun (DataParallelStepBench).
//        step --variant two_stream,gates [--repeat K]: the step-time overhead of `itune ablate` variants (their
//        model.instruction_aware overrides) over baseline, measured in the same process, interleaved K times (median).
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;
using InstructTune.Models;

namespace InstructTune.Bench;

public static class StepBench
{
    private static readonly Dictionary<string, (int Dim, int Layers, int Heads, int Kv, int Ffn, int Vocab, int Seq, int Batch)> Configs = new()
    {
        ["S"] = (256, 4, 4, 4, 688, 4096, 256, 8),
        ["M"] = (512, 8, 8, 4, 1376, 8192, 512, 4),
        ["L"] = (768, 12, 12, 12, 2048, 32000, 512, 2),
    };

    public static int Run(string[] args)
    {
        string config = "S"; int steps = 5, warmup = 1, repeat = 2; bool peer = true, checkpoint = false, lora = false, bf16 = false;
        int[]? ranks = null;
        List<Recipes.Ablation.AblationVariant>? variants = null;
        double peakGflops = 200; // 2 Zen3 cores × 2 FMA × 8 lanes × 2 flops × ~3.1 GHz
        for (int i = 0; i < args.Length; i++)
            switch (args[i])
            {
                case "--config": config = args[++i].ToUpperInvariant(); break;
                case "--steps": steps = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--warmup": warmup = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--no-peer": peer = false; break;
                case "--checkpoint": checkpoint = true; break;
                case "--lora": lora = true; break;
                case "--attention": // A/B of the attention kernels: gemm (default for long sequences) or block4 (rows)
                    AttentionKernel.UseGemm = args[++i] switch { "gemm" => true, "block4" => false, var a => throw new ArgumentException($"--attention {a}: gemm or block4") };
                    break;
                case "--profile": return Profile(args.Contains("--managed"));
                case "--managed": break;
                case "--ranks": ranks = args[++i].Split([',', '|']).Select(r => int.Parse(r, CultureInfo.InvariantCulture)).ToArray(); break;
                case "--repeat": repeat = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--variant":
                    try { variants = [.. Recipes.Ablation.AblationVariants.Parse(args[++i])]; }
                    catch (Common.InputException e) { Console.Error.WriteLine($"step --variant: {e.Message}"); return 2; }
                    break;
                case "--peak-gflops": peakGflops = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--precision": // training.precision: float32 (default) or bf16 (autocast GEMMs; also times float32 in the same run)
                    bf16 = args[++i] switch { "bf16" => true, "float32" => false, var p => throw new ArgumentException($"--precision {p}: float32 or bf16") };
                    break;
                default: Console.Error.WriteLine($"step: unknown option {args[i]}"); return 2;
            }
        if (!Configs.TryGetValue(config, out var c)) { Console.Error.WriteLine($"step: unknown config {config} (S, M, L)"); return 2; }
        if (ranks != null) return DataParallelStepBench.Run(config, ranks, steps, warmup, repeat, lora);

        // The peer runs first, in its own process, so neither run's memory shows in the other's peak RSS.
        (double Tps, double Rss, double Tpcs)? torch = peer && variants == null ? RunPeer(config, steps, warmup, lora) : null;

        Parallel2.Threads = 2;
        Gemm.MaxThreads = 2;
        var cfg = new LlamaConfig
        {
            VocabSize = c.Vocab, HiddenSize = c.Dim, NumHiddenLayers = c.Layers, NumAttentionHeads = c.Heads,
            NumKeyValueHeads = c.Kv, IntermediateSize = c.Ffn, RmsNormEps = 1e-5,
        };
        if (variants != null) return VariantOverheads(variants, repeat, v => Measure(bf16, v), $"step{(lora ? "-lora" : "")} {config}");
        // --precision bf16: our own float32 step first, same model, data and seed, then the bf16 one.
        double? f32Tps = null;
        float f32Loss = 0;
        if (bf16)
        {
            var f = Measure(false);
            f32Tps = f.Tps; f32Loss = f.Loss;
            Console.WriteLine($"step{(lora ? "-lora" : "")} {config} float32 (reference for --precision bf16): {f.Tps:F0} tokens/s, {f.Tpcs:F0} tokens per CPU-second, loss {f.Loss:F4}");
        }
        var (tps, tpcs, loss, allocMiB, gcs, mfu, rss, sw) = Measure(bf16);
        Console.WriteLine($"step{(lora ? "-lora" : "")} {config}{(bf16 ? " bf16" : "")}: {tps:F0} tokens/s, {sw / steps:F3} s/step, MFU {mfu:P1} (peak {peakGflops} GFLOP/s), peak RSS {rss:F0} MiB, loss {loss:F4}, GEMM {Gemm.Backend}{(bf16 ? $", bf16 GEMM {Gemm.Bf16Backend}" : "")}{(checkpoint ? ", checkpointed" : "")}");
        Console.WriteLine($"  {tpcs:F0} tokens per CPU-second (load average {LoadAverage()})");
        Console.WriteLine($"  managed allocation {allocMiB:F2} MiB/step, {gcs} gen-0 collections in {steps} steps");
        if (f32Tps is double ft) Console.WriteLine($"  bf16 vs our float32 step: {tps / ft:F2}× tokens/s; loss after {warmup + steps} steps {loss:F4} vs {f32Loss:F4}");
        var json = new Dictionary<string, object?>
        {
            ["bench"] = lora ? "step-lora" : "step", ["config"] = config, ["precision"] = bf16 ? "bf16" : "float32", ["tokens_per_s"] = Math.Round(tps, 1), ["mfu"] = Math.Round(mfu, 4),
            ["peak_rss_mib"] = Math.Round(rss, 1), ["tokens_per_cpu_s"] = Math.Round(tpcs, 1),
        };
        if (f32Tps is double f32t) { json["f32_tokens_per_s"] = Math.Round(f32t, 1); json["ratio_vs_f32"] = Math.Round(tps / f32t, 3); json["loss"] = loss; json["f32_loss"] = f32Loss; json["load_average"] = LoadAverage(); }
        if (torch is { } t)
        {
            Console.WriteLine($"  pytorch: {t.Tps:F0} tokens/s, {t.Tpcs:F0} tokens per CPU-second, peak RSS {t.Rss:F0} MiB → ratio {tps / t.Tps:F2}× speed ({tpcs / t.Tpcs:F2}× per CPU-second), {rss / t.Rss:F2}× memory");
            json["peer"] = "pytorch"; json["peer_tokens_per_s"] = Math.Round(t.Tps, 1); json["ratio"] = Math.Round(tps / t.Tps, 3);
            json["peer_peak_rss_mib"] = Math.Round(t.Rss, 1); json["memory_ratio"] = Math.Round(rss / t.Rss, 3);
            json["peer_tokens_per_cpu_s"] = Math.Round(t.Tpcs, 1); json["cpu_ratio"] = Math.Round(tpcs / t.Tpcs, 3);
        }
        Console.WriteLine(JsonSerializer.Serialize(json));
        return 0;

        (double Tps, double Tpcs, float Loss, double AllocMiB, int Gcs, double Mfu, double Rss, double Seconds) Measure(bool lowp,
            Models.InstructionAware.InstructionAwareOptions? variant = null)
        {
        using var scope = Autocast.Enter(lowp);
        var model = new LlamaModel(cfg);
        model.InitializeWeights(0, 0.02f);
        var rng = new Rng(1);
        var ids = new IntTensor(Enumerable.Range(0, c.Batch * c.Seq).Select(_ => rng.NextInt(c.Vocab)).ToArray(), c.Batch, c.Seq);
        var batch = new LlamaBatch(ids) { Labels = ids, Segments = variant != null ? SyntheticSegments(c.Batch, c.Seq) : null };
        if (lora)   // rank 8 on all seven projections, base frozen: only dX flows through the base Linears
            InstructTune.Peft.Lora.LoraInjector.Inject(model, new InstructTune.Peft.Lora.LoraConfig { Rank = 8, Alpha = 16 }, seed: 2);
        if (variant is { Any: true }) model.AttachInstructionAware(variant);   // after the freeze, as the recipe does
        var opt = new AdamW(model.Parameters().Where(p => !p.Frozen), lr: 1e-4f, weightDecay: 0.01f);
        var options = new LlamaForwardOptions { ReturnLogits = false, CheckpointLayers = checkpoint };
        float loss = 0;
        long allocated = 0; int gcs = 0; TimeSpan cpu0 = default;
        var sw = new Stopwatch();
        for (int s = 0; s < warmup + steps; s++)
        {
            if (s == warmup) { sw.Start(); cpu0 = Process.GetCurrentProcess().TotalProcessorTime; allocated = GC.GetTotalAllocatedBytes(true); gcs = GC.CollectionCount(0); }
            using (var tape = Tape.Record())
            {
                var o = model.Forward(batch, options);
                tape.Backward(o.Loss!);
                loss = o.Loss!.Item();
            }
            opt.Step();
            model.ZeroGrad();
        }
        sw.Stop();
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        double allocMiB = (GC.GetTotalAllocatedBytes(true) - allocated) / (1024.0 * 1024.0) / steps;
        gcs = GC.CollectionCount(0) - gcs;
        double tokens = (double)c.Batch * c.Seq * steps;
        double tps = tokens / sw.Elapsed.TotalSeconds;
        double tpcs = tokens / cpuSeconds; // per CPU-second: the work measure, robust when the machine is shared
        // + causal attention 6 × layers × seq × dim (QKᵀ and PV, fwd+bwd).
        // Model FLOPs per token: a trainable matrix costs 6 flops per weight (forward, dX, dW), a frozen one 4 (no dW).
        double matmulFlops = model.NamedParameters().Where(p => p.Parameter.Rank == 2 && !p.Name.Contains("embed_tokens"))
            .Sum(p => (p.Parameter.Frozen ? 4.0 : 6.0) * p.Parameter.Length);
        if (cfg.TieWordEmbeddings) matmulFlops += (lora ? 4.0 : 6.0) * c.Vocab * c.Dim;
        double flopsPerToken = matmulFlops + 6.0 * c.Layers * c.Seq * c.Dim;
        double mfu = tps * flopsPerToken / (peakGflops * 1e9);
        double rss = Process.GetCurrentProcess().PeakWorkingSet64 / (1024.0 * 1024.0);
        return (tps, tpcs, loss, allocMiB, gcs, mfu, rss, sw.Elapsed.TotalSeconds);
        }
    }

    /// <summary>Segment ids of an instruction-tuning row: 5 % template, 30 % instruction, 15 % input, 50 % response.</summary>
    private static IntTensor SyntheticSegments(int B, int T)
    {
        var s = new int[B * T];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                s[b * T + t] = t < T / 20 ? 0 : t < T * 35 / 100 ? 1 : t < T / 2 ? 2 : 3;
        return new IntTensor(s, B, T);
    }

    /// <summary>`--variant`: baseline and each variant measured in turn, <paramref name="repeat"/> rounds interleaved
    /// and rotated (so a load change on a shared machine, or running first, hits all of them), every model on the same batch (with segment ids);
    /// prints the median tokens/s and tokens per CPU-second and each variant's step-time overhead over baseline.</summary>
    private static int VariantOverheads(List<Recipes.Ablation.AblationVariant> variants, int repeat,
        Func<Models.InstructionAware.InstructionAwareOptions, (double Tps, double Tpcs, float Loss, double AllocMiB, int Gcs, double Mfu, double Rss, double Seconds)> measure,
        string label)
    {
        var all = new List<Recipes.Ablation.AblationVariant>();
        if (!variants.Any(v => v.Name == "baseline")) all.Add(Recipes.Ablation.AblationVariants.Parse("baseline")[0]);
        all.AddRange(variants);
        var options = new Dictionary<string, Models.InstructionAware.InstructionAwareOptions>();
        foreach (var v in all)
        {
            var other = v.Overrides.Where(o => !o.StartsWith("model.instruction_aware.", StringComparison.Ordinal)).ToList();
            if (other.Count > 0)
            {
                Console.Error.WriteLine($"step --variant {v.Name}: only model.instruction_aware variants can be timed here ({string.Join(", ", other)}); use --lora for LoRA");
                return 2;
            }
            options[v.Name] = Recipes.FineTuneRecipe.InstructionAwareOptions(
                Training.Config.ConfigLoader.LoadFromString<Training.Config.TrainConfig>("", v.Overrides));
            if (options[v.Name] is { TaskClasses: > 0 } or { RepresentationHead: true })
            {
                Console.Error.WriteLine($"step --variant {v.Name}: a loss variant (its heads run in the training objective, not in this model step); `itune ablate` reports its step time");
                return 2;
            }
        }
        var tps = all.ToDictionary(v => v.Name, _ => new List<double>());
        var tpcs = all.ToDictionary(v => v.Name, _ => new List<double>());
        var parameters = new Dictionary<string, long>();
        for (int r = 0; r < Math.Max(1, repeat); r++)
            foreach (var v in all.Skip(r % all.Count).Concat(all.Take(r % all.Count)))   // each round starts one later: no variant always runs first
            {
                var m = measure(options[v.Name]);
                tps[v.Name].Add(m.Tps); tpcs[v.Name].Add(m.Tpcs);
                Console.WriteLine($"  round {r + 1} {v.Name,-16} {m.Tps,8:F0} tokens/s  {m.Tpcs,8:F0} tokens per CPU-second  loss {m.Loss:F4}");
            }
        static double Median(List<double> x) { var s = x.Order().ToList(); return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2; }
        double baseTps = Median(tps["baseline"]), baseTpcs = Median(tpcs["baseline"]);
        var rows = new List<Dictionary<string, object?>>();
        Console.WriteLine($"{label} variants (median of {Math.Max(1, repeat)} interleaved rounds; load average {LoadAverage()}):");
        foreach (var v in all)
        {
            double t = Median(tps[v.Name]), tc = Median(tpcs[v.Name]);
            double overWall = Math.Round(baseTps / t - 1, 3), overCpu = Math.Round(baseTpcs / tc - 1, 3);   // step time ∝ 1 / tokens per second
            if (overWall == 0) overWall = 0; if (overCpu == 0) overCpu = 0;   // no "-0.0 %"
            Console.WriteLine($"  {v.Name,-16} {t,8:F0} tokens/s ({overWall,7:+0.0%;-0.0%} step time vs baseline)  {tc,8:F0} tokens per CPU-second ({overCpu,7:+0.0%;-0.0%})");
            rows.Add(new() { ["variant"] = v.Name, ["tokens_per_s"] = Math.Round(t, 1), ["tokens_per_cpu_s"] = Math.Round(tc, 1),
                ["step_time_overhead"] = Math.Round(overWall, 4), ["cpu_time_overhead"] = Math.Round(overCpu, 4) });
        }
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?> { ["bench"] = "step-variant", ["label"] = label, ["rounds"] = Math.Max(1, repeat), ["load_average"] = LoadAverage(), ["variants"] = rows }));
        return 0;
    }

    /// <summary>Model and batch shape of a config (S, M, L).</summary>
    public static (int Dim, int Layers, int Heads, int Kv, int Ffn, int Vocab, int Seq, int Batch) Shape(string config) =>
        Configs.TryGetValue(config, out var c) ? c : throw new ArgumentException($"unknown config {config} (S, M, L)");

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static (double, double, double)? RunPeer(string config, int steps, int warmup, bool lora)
    {
        const string python = "/usr/bin/python3";
        string script = Path.Combine(RepoRoot(), "bench", "peers", "torch_step.py");
        if (!File.Exists(python) || !File.Exists(script)) { Console.Error.WriteLine("step: no PyTorch peer (python3 or script missing)"); return null; }
        var psi = new ProcessStartInfo(python, ["-u", script, "--config", config, "--steps", steps.ToString(CultureInfo.InvariantCulture), "--warmup", warmup.ToString(CultureInfo.InvariantCulture), .. (lora ? new[] { "--lora" } : [])])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        TorchPeerSettings.Apply(psi);
        using var p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        var line = stdout.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'));
        if (p.ExitCode != 0 || line == null) { Console.Error.WriteLine($"step: PyTorch peer failed ({p.ExitCode}): {stderr.Trim()}"); return null; }
        var doc = JsonDocument.Parse(line).RootElement;
        return (doc.GetProperty("tokens_per_s").GetDouble(), doc.GetProperty("peak_rss_mib").GetDouble(), doc.GetProperty("tokens_per_cpu_s").GetDouble());
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "InstructTune.sln"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }

    // Kernel-by-kernel CPU breakdown of one config-S step (tokens 2048): where the time goes.
    private static int Profile(bool managed)
    {
        Parallel2.Threads = 2; Gemm.MaxThreads = 2;
        if (managed) Gemm.Backend = GemmBackend.Managed;
        int B = 8, T = 256, C = 256, H = 4, hd = 64, F = 688, V = 4096, N = B * T;
        var rng = new Rng(1);
        float[] R(int n) { var a = new float[n]; rng.Normal(a); return a; }
        var x = R(N * C); var w = R(C * C); var y = new float[N * C]; var wf = R(F * C); var yf = new float[N * F];
        var wv = R(V * C); var yv = new float[N * V];
        void Time(string name, int reps, Action a)
        {
            a();
            var sw = Stopwatch.StartNew();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            for (int i = 0; i < reps; i++) a();
            var cpu2 = Process.GetCurrentProcess().TotalProcessorTime;
            Console.WriteLine($"{name,-28} wall {sw.Elapsed.TotalMilliseconds / reps,8:F2} ms  cpu {(cpu2 - cpu).TotalMilliseconds / reps,8:F2} ms");
        }
        Time("gemm NT N×C×C", 5, () => Gemm.Sgemm(false, true, N, C, C, 1, x, C, w, C, 0, y, C));
        Time("gemm NT N×F×C", 5, () => Gemm.Sgemm(false, true, N, F, C, 1, x, C, wf, C, 0, yf, F));
        Time("gemm NT N×V×C (lm_head)", 3, () => Gemm.Sgemm(false, true, N, V, C, 1, x, C, wv, C, 0, yv, V));
        Time("gemm NN dX lm_head", 3, () => Gemm.Sgemm(false, false, N, C, V, 1, yv, V, wv, C, 0, y, C));
        Time("gemm TN dW lm_head", 3, () => Gemm.Sgemm(true, false, V, C, N, 1, yv, V, x, C, 0, wv, C));
        var q = R(N * C); var k = R(N * C); var v = R(N * C); var o = new float[N * C]; var lse = new float[B * H * T];
        var d = new AttentionDims(B, T, T, H, H, hd);
        var dq = new float[N * C]; var dk = new float[N * C]; var dv = new float[N * C];
        for (int rep = 0; rep < 2; rep++)
            foreach (var (gemm, blk, label) in new[] { (false, false, "rows"), (false, true, "block4"), (true, true, "gemm") })
            {
                AttentionKernel.UseGemm = gemm; AttentionKernel.UseBlock4 = blk;
                Time($"attention fwd {label}", 3, () => AttentionKernel.Forward(q, k, v, o, lse, d, 0.125f));
                Time($"attention bwd {label}", 3, () => AttentionKernel.Backward(q, q, k, v, o, lse, dq, dk, dv, d, 0.125f));
            }
        var tg = Enumerable.Range(0, N).Select(i => i % V).ToArray(); var ls = new float[N]; var lz = new float[N];
        Time("cross-entropy fwd", 3, () => CrossEntropyKernel.Forward(yv, tg, ls, lz, N, V));
        var dl = Enumerable.Repeat(1f / N, N).ToArray();
        Time("cross-entropy bwd", 3, () => CrossEntropyKernel.Backward(yv, tg, lz, dl, yv, N, V));
        var rs = new float[N]; var wn = R(C);
        Time("rmsnorm fwd", 5, () => RmsNormKernel.Forward(x, wn, y, rs, N, C, 1e-5f));
        Time("rmsnorm bwd", 5, () => RmsNormKernel.Backward(x, x, wn, rs, y, wn, N, C));
        Time("swiglu fwd", 5, () => ActivationKernels.SwiGluForward(yf, yf, yf));
        var cs = new float[N * hd / 2]; var sn = new float[N * hd / 2];
        RopeKernel.CosSin(Enumerable.Range(0, N).Select(i => i % T).ToArray(), RopeKernel.InverseFrequencies(hd, 10000), cs, sn);
        Time("rope fwd", 5, () => RopeKernel.Forward(q, cs, sn, o, N, H, hd));
        Time("rope tables", 5, () => RopeKernel.CosSin(tg, RopeKernel.InverseFrequencies(hd, 10000), cs, sn));
        return 0;
    }
}
