// `step --ranks 1,2`: data-parallel training steps of config S|M|L under mpirun, one thread per rank, the same
// global batch (4 rows × seq for M) for every rank count: tokens/s of the job, gradient allreduce ms per step,
// and the scaling efficiency tokens/s(N) ÷ (N × tokens/s(1)). The ranks run the real trainer (sharded
// micro-batches, token counts and gradients summed with MPI_Allreduce, AdamW). Rank counts alternate over
// --repeat rounds, so a machine shared with other work disturbs each of them alike.
// Usage: dotnet run -c Release --project bench/InstructTune.Bench -- step --config M --ranks 1,2 [--steps N]
//        [--warmup N] [--repeat K] [--lora]
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using InstructTune.Data.Batching;
using InstructTune.Distributed;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Training.Config;
using InstructTune.Training.Loop;
using InstructTune.Training.Losses;

namespace InstructTune.Bench;

public static class DataParallelStepBench
{
    /// <summary>Parent: runs mpirun -np N of this bench's rank mode for each N, prints the table and JSON.</summary>
    public static int Run(string config, int[] ranks, int steps, int warmup, int repeat, bool lora)
    {
        var mpirun = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);
        if (mpirun == null) { Console.Error.WriteLine("step --ranks: mpirun is not installed (apt-get install openmpi-bin)"); return 2; }
        var results = ranks.ToDictionary(n => n, _ => new List<(double Tps, double AllreduceMs, double StepS, double Tpcs, double TransferMs, double GradMiB)>());
        for (int round = 0; round < repeat; round++)
            foreach (var n in ranks)
            {
                var psi = new ProcessStartInfo(mpirun) { RedirectStandardOutput = true, UseShellExecute = false };
                string[] self = Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet"
                    ? [Environment.ProcessPath!, typeof(DataParallelStepBench).Assembly.Location] : [Environment.ProcessPath!];
                string[] line0 = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", n.ToString(CultureInfo.InvariantCulture), .. self,
                    "step-rank", config, steps.ToString(CultureInfo.InvariantCulture), warmup.ToString(CultureInfo.InvariantCulture), lora ? "lora" : "full"];
                foreach (var a in line0) psi.ArgumentList.Add(a);
                using var p = Process.Start(psi)!;
                var stdout = p.StandardOutput.ReadToEnd();
                p.WaitForExit();
                // Rank 0's JSON line (a terminal may prefix escape codes to the first line).
                var line = stdout.Split('\n').Where(l => l.Contains("{\"tokens_per_s\"")).Select(l => l[l.IndexOf('{')..]).FirstOrDefault();
                if (p.ExitCode != 0 || line == null) { Console.Error.WriteLine($"step --ranks {n}: mpirun failed ({p.ExitCode})\n{stdout}"); return 1; }
                var doc = JsonDocument.Parse(line).RootElement;
                double D(string k) => doc.GetProperty(k).GetDouble();
                var r = (D("tokens_per_s"), D("allreduce_ms_per_step"), D("s_per_step"), D("tokens_per_cpu_s"), D("allreduce_transfer_ms"), D("gradient_mib"));
                results[n].Add(r);
                Console.WriteLine($"round {round + 1}: {n} rank(s) × 1 thread: {r.Item1:F1} tokens/s, {r.Item3:F2} s/step, {r.Item4:F1} tokens per CPU-second; " +
                                  $"allreduce {r.Item2:F1} ms/step in the step (with waiting), {r.Item5:F1} ms alone for {r.Item6:F1} MiB (load average {LoadAverage()})");
            }
        double Best(int n) => results[n].Max(r => r.Tps);
        double baseTps = results.ContainsKey(1) ? Best(1) : double.NaN;
        double BestCpu(int n) => results[n].Max(r => r.Tpcs);
        var json = new Dictionary<string, object?> { ["bench"] = lora ? "step-lora-ranks" : "step-ranks", ["config"] = config, ["repeat"] = repeat };
        foreach (var n in ranks)
        {
            double tps = Best(n), eff = tps / (n * baseTps);
            Console.WriteLine($"step{(lora ? "-lora" : "")} {config} {n} rank(s): best {tps:F1} tokens/s (all: {string.Join(", ", results[n].Select(r => r.Tps.ToString("F1", CultureInfo.InvariantCulture)))}), " +
                              $"{BestCpu(n):F1} tokens per CPU-second, allreduce {results[n].Average(r => r.AllreduceMs):F1} ms/step ({results[n].Average(r => r.TransferMs):F1} ms transfer alone)" +
                              (n > 1 && !double.IsNaN(eff) ? $", scaling efficiency {eff:P0} (per CPU-second {BestCpu(n) / BestCpu(1):P0})" : ""));
            json[$"tokens_per_s_{n}"] = Math.Round(tps, 1);
            json[$"allreduce_ms_{n}"] = Math.Round(results[n].Average(r => r.AllreduceMs), 2);
            json[$"allreduce_transfer_ms_{n}"] = Math.Round(results[n].Average(r => r.TransferMs), 2);
            json[$"tokens_per_cpu_s_{n}"] = Math.Round(BestCpu(n), 1);
            if (n > 1) json[$"efficiency_{n}"] = Math.Round(eff, 3);
        }
        Console.WriteLine(JsonSerializer.Serialize(json));
        return 0;
    }

    /// <summary>One rank (under mpirun): the trainer on random ids, global batch fixed, GA = 2 ÷ ranks per rank.</summary>
    public static int RankMain(string[] args)
    {
        var (dim, layers, heads, kv, ffn, vocab, seq, batch) = StepBench.Shape(args[0]);
        int steps = int.Parse(args[1], CultureInfo.InvariantCulture), warmup = int.Parse(args[2], CultureInfo.InvariantCulture);
        bool lora = args[3] == "lora";
        using var comm = MpiJob.Start(new DistributedSection());
        Parallel2.Threads = 1; Gemm.MaxThreads = 1;
        const int microBatches = 2;   // per global step, over all ranks
        if (microBatches % comm.Size != 0) throw new ArgumentException($"--ranks {comm.Size}: must divide {microBatches}");
        int rows = batch / microBatches;
        var model = new LlamaModel(new LlamaConfig
        {
            VocabSize = vocab, HiddenSize = dim, NumHiddenLayers = layers, NumAttentionHeads = heads,
            NumKeyValueHeads = kv, IntermediateSize = ffn, RmsNormEps = 1e-5,
        });
        model.InitializeWeights(0, 0.02f);
        if (lora) InstructTune.Peft.Lora.LoraInjector.Inject(model, new InstructTune.Peft.Lora.LoraConfig { Rank = 8, Alpha = 16 }, seed: 2);
        var rng = new Rng(1);
        var batches = Enumerable.Range(0, microBatches).Select(_ =>
        {
            var ids = Enumerable.Range(0, rows * seq).Select(_ => rng.NextInt(vocab)).ToArray();
            var pos = Enumerable.Range(0, rows * seq).Select(i => i % seq).ToArray();
            return new Batch(rows, seq, ids, ids, pos, new int[rows * seq], new byte[rows * seq], new int[rows * seq],
                Enumerable.Range(0, rows).Select(r => new[] { r }).ToArray(), 0);
        }).ToList();
        var trainable = model.NamedParameters().Where(p => !p.Parameter.Frozen).ToList();
        var optimizer = new AdamW(trainable.Select(t => t.Parameter), lr: 1e-4f, weightDecay: 0.01f);
        var trainer = new Trainer(model, trainable, optimizer, new ListBatchSource(batches),
            new TrainerOptions(microBatches / comm.Size, 1f, new Engine.Optim.LrSchedule(LrScheduleKind.Constant, 1e-4f, 0, 1000), new ObjectiveOptions(), 1));
        if (comm.Size > 1) trainer.Distribute(comm, 0, 25);
        var sw = new Stopwatch();
        double allreduce0 = 0;
        TimeSpan cpu0 = default;
        for (int s = 0; s < warmup + steps; s++)
        {
            if (s == warmup) { comm.Barrier("bench start"); sw.Start(); allreduce0 = trainer.AllreduceSeconds; cpu0 = Process.GetCurrentProcess().TotalProcessorTime; }
            trainer.TrainStep();
        }
        comm.Barrier("bench end");
        sw.Stop();
        Span<double> cpu = [(Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds];
        comm.AllreduceSum(cpu);
        // The in-step allreduce time includes waiting for the slower rank; the transfer alone: the same
        // gradient volume reduced again after a barrier.
        double transferMs = 0;
        if (comm.Size > 1)
        {
            var reducer = new GradientReducer(comm, trainable.Select(t => t.Parameter).ToList(), 25 * 262144);
            const int reps = 5;
            for (int i = 0; i < reps; i++) { comm.Barrier("transfer"); double t0 = reducer.Seconds; reducer.Reduce([]); transferMs += (reducer.Seconds - t0) * 1000 / reps; }
        }
        double tokens = (double)batch * seq * steps;
        if (comm.Rank == 0)
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, double>
            {
                ["tokens_per_s"] = tokens / sw.Elapsed.TotalSeconds,
                ["tokens_per_cpu_s"] = tokens / cpu[0],
                ["s_per_step"] = sw.Elapsed.TotalSeconds / steps,
                ["allreduce_ms_per_step"] = (trainer.AllreduceSeconds - allreduce0) * 1000 / steps,
                ["allreduce_transfer_ms"] = transferMs,
                ["gradient_mib"] = trainable.Sum(t => (double)t.Parameter.Length) * 4 / 1048576,
            }));
        return 0;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";
}
