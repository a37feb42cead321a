using System.Diagnostics;
using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Recipes;
using InstructTune.Training.Checkpointing;
using InstructTune.Training.Config;
using InstructTune.Tests.Training;

namespace InstructTune.Tests.Distributed;

/// <summary>A fact skipped, with the reason, only when Open MPI's mpirun is not installed (CI installs it).</summary>
public sealed class MpiFactAttribute : FactAttribute
{
    public static string? Mpirun { get; } = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
        .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    public MpiFactAttribute()
    {
        if (Mpirun == null) Skip = "mpirun is not installed (apt-get install -y openmpi-bin); the data-parallel tests need it";
    }
}

/// <summary>
/// Data-parallel training under a real `mpirun -np 2` against the one-process trainer with the same global
/// batch (gradient_accumulation_steps 2 in one process = 1 per rank × 2 ranks): final weights within 1e-5 and
/// per-step losses within 1e-4 (only float summation order differs), for full fine-tuning and LoRA (with
/// dropout); QLoRA with ZeRO-1, and its checkpoints cross between 2 ranks and 1; a killed or stalled rank ends the job
/// with an error in time.
/// </summary>
public class MpiTrainingTests
{
    private const int Steps = 10;

    private static string MakeWorkspace(string method)
    {
        var (dir, modelDir, _) = TinyTrainingWorkspace.Create("mpi", records: 90, maxPositions: 512);
        File.WriteAllText(Path.Combine(dir, "train.yaml"), $"""
            model:
              path: {modelDir}
            data:
              path: {Path.Combine(dir, "train.jsonl")}
              max_seq_len: 256
              validation_fraction: 0.1
            training:
              method: {method}
              max_steps: {Steps}
              micro_batch_size: 3
              gradient_accumulation_steps: 2
              learning_rate: {(method == "full" ? "0.001" : "0.003")}
              warmup_steps: 2
              weight_decay: 0.01
              seed: 7
            lora:
              rank: 4
              alpha: 8
              dropout: 0.1
            checkpoint:
              save_every_steps: 5
              keep_last: 3
            eval:
              every_steps: 5
            logging:
              tensor_board: false
            """);
        return dir;
    }

    private static TrainingSummary RunInProcess(string dir, string runDir, params string[] overrides)
    {
        var config = ConfigLoader.Load<TrainConfig>(Path.Combine(dir, "train.yaml"), [$"checkpoint.output_dir={runDir}", .. overrides]);
        return FineTuneRecipe.Setup(config).Train(quiet: true);
    }

    /// <summary>`mpirun … itune train`, or with <paramref name="launcher"/> `itune train --launcher mpi --ranks N`
    /// (which builds the mpirun line itself).</summary>
    private static Process StartMpi(string dir, int ranks, string runDir, IEnumerable<string> extra, bool launcher = false)
    {
        var psi = new ProcessStartInfo(launcher ? "dotnet" : MpiFactAttribute.Mpirun!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] mpirun = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", ranks.ToString(), "dotnet"];
        string[] itune = [Path.Combine(AppContext.BaseDirectory, "itune.dll"), "train", "--config", Path.Combine(dir, "train.yaml"),
            $"checkpoint.output_dir={runDir}", "distributed.threads_per_rank=1"];
        foreach (var a in launcher ? itune : [.. mpirun, .. itune]) psi.ArgumentList.Add(a);
        if (launcher) foreach (var a in new[] { "--launcher", "mpi", "--ranks", ranks.ToString() }) psi.ArgumentList.Add(a);
        foreach (var a in extra) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    /// <summary>Runs mpirun to completion; the output of a failure is in the assertion message.</summary>
    private static void RunMpi(string dir, int ranks, string runDir, string[] extra, bool launcher = false)
    {
        using var p = StartMpi(dir, ranks, runDir, extra, launcher);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        bool done = p.WaitForExit(TimeSpan.FromMinutes(4));
        if (!done) p.Kill(entireProcessTree: true);
        Assert.True(done && p.ExitCode == 0, $"mpirun -np {ranks} failed ({(done ? p.ExitCode : "timeout")}):\n{stdout.Result}\n{stderr.Result}");
    }

    private static Dictionary<string, float[]> Weights(string checkpoint)
    {
        using var f = SafetensorsFile.Open(Path.Combine(checkpoint, TrainerCheckpoint.WeightsFile));
        return f.Tensors.Keys.ToDictionary(k => k, f.ReadF32);
    }

    private static void AssertWeightsClose(string expectedCheckpoint, string actualCheckpoint, float tolerance)
    {
        var e = Weights(expectedCheckpoint); var a = Weights(actualCheckpoint);
        Assert.Equal(e.Keys.Order(), a.Keys.Order());
        double changed = 0;
        foreach (var (name, ev) in e)
        {
            var av = a[name];
            for (int i = 0; i < ev.Length; i++)
                Assert.True(Math.Abs(ev[i] - av[i]) <= tolerance, $"{name}[{i}]: one process {ev[i]}, data parallel {av[i]}");
            changed += ev.Length;
        }
        Assert.True(changed > 0);
    }

    /// <summary>(step, loss) and (step, eval_loss) from rank 0's metrics.jsonl.</summary>
    private static (Dictionary<int, double> Loss, Dictionary<int, double> Eval) Metrics(string runDir)
    {
        var loss = new Dictionary<int, double>(); var eval = new Dictionary<int, double>();
        foreach (var line in File.ReadLines(Path.Combine(runDir, "metrics.jsonl")))
        {
            var r = JsonDocument.Parse(line).RootElement;
            int step = r.GetProperty("step").GetInt32();
            if (r.TryGetProperty("loss", out var l)) loss[step] = l.GetDouble();
            if (r.TryGetProperty("eval_loss", out var v)) eval[step] = v.GetDouble();
        }
        return (loss, eval);
    }

    private static void AssertSameRun(string dir, string method, bool launcher)
    {
        var reference = Path.Combine(dir, "run-1");
        var summary = RunInProcess(dir, reference);
        Assert.Equal(Steps, summary.Steps);
        var parallel = Path.Combine(dir, "run-2");
        RunMpi(dir, 2, parallel, ["training.gradient_accumulation_steps=1"], launcher);

        AssertWeightsClose(new CheckpointStore(reference).Latest()!, new CheckpointStore(parallel).Latest()!, 1e-5f);
        var (loss, eval) = Metrics(parallel);
        Assert.Equal(Steps, loss.Count);
        foreach (var (step, expected) in summary.LossCurve)
            Assert.True(Math.Abs(expected - loss[step]) <= 1e-4, $"{method} step {step}: loss {expected} in one process, {loss[step]} on 2 ranks");
        var (_, referenceEval) = Metrics(reference);
        Assert.Equal(referenceEval.Keys.Order(), eval.Keys.Order());
        foreach (var (step, expected) in referenceEval) Assert.True(Math.Abs(expected - eval[step]) <= 1e-4, $"eval_loss at {step}");
        // Only rank 0 writes: one set of checkpoints, one exported artefact.
        Assert.Equal([5L, 10L], new CheckpointStore(parallel).List().Select(c => c.Step));
        Assert.True(Directory.Exists(Path.Combine(parallel, method == "full" ? "final" : "adapter")));
    }

    [MpiFact]
    public void FullFineTuningOnTwoRanksEqualsOneProcess() => AssertSameRun(MakeWorkspace("full"), "full", launcher: true);   // itune train --launcher mpi

    [MpiFact]
    public void LoraOnTwoRanksEqualsOneProcess() => AssertSameRun(MakeWorkspace("lora"), "lora", launcher: false);  // mpirun … itune train

    [MpiFact]
    public void CheckpointsCrossBetweenTwoRanksAndOne()
    {
        var dir = MakeWorkspace("qlora");   // QLoRA: LoRA over the NF4 base, the same adapters reduced
        var reference = Path.Combine(dir, "run-1");
        RunInProcess(dir, reference);
        var final = new CheckpointStore(reference).Latest()!;
        var halfway = new CheckpointStore(reference).List().Single(c => c.Step == 5).Path;

        // 1 rank → 2 ranks (ZeRO-1, so the gathered optimizer state is what gets written at the end).
        var to2 = Path.Combine(dir, "run-1to2");
        RunMpi(dir, 2, to2, ["training.gradient_accumulation_steps=1", "distributed.zero_stage=1", "--resume", halfway]);
        AssertWeightsClose(final, new CheckpointStore(to2).Latest()!, 1e-5f);

        // 2 ranks → 1 rank: the 2-rank run's step-5 checkpoint resumed in one process with the same global batch.
        var from2 = Path.Combine(dir, "run-2");
        RunMpi(dir, 2, from2, ["training.gradient_accumulation_steps=1", "distributed.zero_stage=1"]);
        AssertWeightsClose(final, new CheckpointStore(from2).Latest()!, 1e-5f);   // ZeRO-1 from the start
        var from2Halfway = new CheckpointStore(from2).List().Single(c => c.Step == 5).Path;
        var to1 = Path.Combine(dir, "run-2to1");
        var config = ConfigLoader.Load<TrainConfig>(Path.Combine(dir, "train.yaml"), [$"checkpoint.output_dir={to1}"]);
        FineTuneRecipe.Setup(config, resume: from2Halfway).Train(quiet: true);
        AssertWeightsClose(final, new CheckpointStore(to1).Latest()!, 1e-5f);

        // A different global batch is refused, naming the key.
        var wrong = ConfigLoader.Load<TrainConfig>(Path.Combine(dir, "train.yaml"), [$"checkpoint.output_dir={to1}", "training.gradient_accumulation_steps=1"]);
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(wrong, resume: from2Halfway));
        Assert.Contains("training.gradient_accumulation_steps", e.Message);
    }

    private static int RankPid(Process mpirun, int rank)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
                try
                {
                    var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                    var parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
                    if (parent != mpirun.Id) continue;
                    var env = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                    if (env.Contains($"OMPI_COMM_WORLD_RANK={rank}")) return pid;
                }
                catch (IOException) { } catch (UnauthorizedAccessException) { }
            }
            Thread.Sleep(100);
        }
        throw new TimeoutException($"rank {rank} of mpirun {mpirun.Id} not found");
    }

    /// <summary>Starts a long 2-rank run, waits for step 2, does <paramref name="hurt"/> to rank 1; the job must end, with an error, in time.</summary>
    private static (int ExitCode, string Stderr, double Seconds) HurtRankOne(Action<int> hurt, params string[] extra)
    {
        var dir = MakeWorkspace("lora");
        var run = Path.Combine(dir, "run");
        using var p = StartMpi(dir, 2, run, ["training.gradient_accumulation_steps=1", "training.max_steps=100000", .. extra]);
        try
        {
            return Hurt(p, run, hurt);
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
    }

    private static (int ExitCode, string Stderr, double Seconds) Hurt(Process p, string run, Action<int> hurt)
    {
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        int pid = RankPid(p, 1);
        var metrics = Path.Combine(run, "metrics.jsonl");
        var clock = Stopwatch.StartNew();
        while (!(File.Exists(metrics) && File.ReadLines(metrics).Any(l => l.StartsWith("{\"step\":2,"))))
        {
            if (p.HasExited) Assert.Fail($"the job ended before step 2: {stdout.Result}\n{stderr.Result}");
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(3), "no step 2 in 3 minutes");
            Thread.Sleep(50);
        }
        hurt(pid);
        var ended = Stopwatch.StartNew();
        bool done = p.WaitForExit(TimeSpan.FromSeconds(60));
        if (!done) Process.Start("kill", ["-KILL", pid.ToString()])?.WaitForExit();
        Assert.True(done, "the job did not end within 60 s of the rank's failure");
        return (p.ExitCode, stderr.Result + stdout.Result, ended.Elapsed.TotalSeconds);
    }

    [MpiFact]
    public void AKilledRankEndsTheJobWithAnError()
    {
        var (code, output, seconds) = HurtRankOne(pid => Process.GetProcessById(pid).Kill());
        Assert.NotEqual(0, code);
        Assert.Contains("rank 1", output);   // mpirun names the rank that died …
        Assert.Contains("rank 0/2: stopped by mpirun", output);   // … and the surviving rank says why it stops
        Assert.True(seconds < 60, $"{seconds:F0} s");
    }

    [MpiFact]
    public void AStalledRankEndsTheJobAfterTheCollectiveTimeout()
    {
        // SIGSTOP: rank 1 neither exits nor answers, which mpirun cannot see; rank 0's watchdog must end the job.
        var (code, output, seconds) = HurtRankOne(pid => Process.Start("kill", ["-STOP", pid.ToString()])!.WaitForExit(),
            "distributed.collective_timeout_s=5");
        Assert.Equal(4, code);
        Assert.Contains("rank 0/2: error: MPI_", output);
        Assert.Contains("did not complete within 5 s", output);
        Assert.True(seconds < 40, $"{seconds:F0} s");
    }
}
