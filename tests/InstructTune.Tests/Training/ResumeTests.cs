using System.Diagnostics;
using InstructTune.Recipes;
using InstructTune.Training.Checkpointing;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Training;

/// <summary>
/// Kill -9 a training process in the middle of writing a checkpoint and again in the middle of a step, resume
/// each time, and end with weights bit-identical to an uninterrupted run of the same seed; the last good
/// checkpoint stays loadable throughout.
/// </summary>
public class ResumeTests
{
    private static string MakeWorkspace()
    {
        // Data: a small Alpaca file of arithmetic and word tasks; model: a tiny random Llama with its own BPE tokenizer.
        var (dir, modelDir, _) = TinyTrainingWorkspace.Create("resume", records: 80, maxPositions: 256);
        File.WriteAllText(Path.Combine(dir, "train.yaml"), $"""
            model:
              path: {modelDir}
            data:
              path: {Path.Combine(dir, "train.jsonl")}
              format: alpaca
              template: alpaca
              max_seq_len: 256
              validation_fraction: 0
            training:
              method: lora
              max_steps: 12
              micro_batch_size: 4
              gradient_accumulation_steps: 2
              learning_rate: 0.003
              warmup_steps: 2
              seed: 7
            lora:
              rank: 4
              alpha: 8
            checkpoint:
              save_every_steps: 3
              keep_last: 2
            logging:
              tensor_board: false
            """);
        return dir;
    }

    private static string ItuneDll => Path.Combine(AppContext.BaseDirectory, "itune.dll");

    private static Process StartTrain(string dir, string runDir, bool resume, int checkpointSleepMs)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { ItuneDll, "train", "--config", Path.Combine(dir, "train.yaml"), $"checkpoint.output_dir={runDir}" })
            psi.ArgumentList.Add(a);
        if (resume) { psi.ArgumentList.Add("--resume"); psi.ArgumentList.Add("latest"); }
        psi.Environment["ITUNE_TEST_CHECKPOINT_SLEEP_MS"] = checkpointSleepMs.ToString();
        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void WaitUntil(Func<bool> condition, Process process, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.False(process.HasExited, $"the training process exited (code {(process.HasExited ? process.ExitCode : 0)}) before {what}");
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(3), $"timed out waiting for {what}");
            Thread.Sleep(20);
        }
    }

    private static byte[] FinalWeights(string runDir) =>
        File.ReadAllBytes(Path.Combine(new CheckpointStore(runDir).Latest()!, TrainerCheckpoint.WeightsFile));

    [Fact]
    public void KilledRunsResumeToTheSameWeightsAsAnUninterruptedRun()
    {
        var dir = MakeWorkspace();

        // The uninterrupted reference, in-process.
        var reference = Path.Combine(dir, "run-reference");
        var config = ConfigLoader.Load<TrainConfig>(Path.Combine(dir, "train.yaml"), [$"checkpoint.output_dir={reference}"]);
        var summary = FineTuneRecipe.Setup(config).Train(quiet: true);
        Assert.Equal(12, summary.Steps);

        var run = Path.Combine(dir, "run-killed");
        var store = new CheckpointStore(run);

        // 1) SIGKILL while checkpoint 6 is being written (the hook holds it open for 3 s inside the temp folder).
        var p1 = StartTrain(dir, run, resume: false, checkpointSleepMs: 3000);
        WaitUntil(() => Directory.Exists(run) && Directory.EnumerateDirectories(run, ".tmp-checkpoint-6-*").Any(), p1, "checkpoint 6 being written");
        p1.Kill(entireProcessTree: true);
        p1.WaitForExit();
        Assert.Equal([3L], store.List().Select(c => c.Step));          // step 6 was never published
        // The last good one loads (resuming: the folder holds this run; the killed process's lock is stale and taken over).
        using (var check = FineTuneRecipe.Setup(ConfigLoader.Load<TrainConfig>(Path.Combine(dir, "train.yaml"), [$"checkpoint.output_dir={run}"]), store.Latest()!))
            Assert.Equal(3, check.Trainer.Step);

        // 2) Resume, then SIGKILL in the middle of training (after step 8 is logged, before step 9's checkpoint).
        var p2 = StartTrain(dir, run, resume: true, checkpointSleepMs: 0);
        WaitUntil(() => File.Exists(Path.Combine(run, "metrics.jsonl")) &&
                        File.ReadLines(Path.Combine(run, "metrics.jsonl")).Any(l => l.StartsWith("{\"step\":8,")), p2, "step 8");
        p2.Kill(entireProcessTree: true);
        p2.WaitForExit();
        Assert.NotNull(store.Latest());

        // 3) Resume to the end.
        var p3 = StartTrain(dir, run, resume: true, checkpointSleepMs: 0);
        Assert.True(p3.WaitForExit(TimeSpan.FromMinutes(3)), "the resumed run did not finish");
        Assert.Equal(0, p3.ExitCode);

        Assert.Equal(12L, store.List()[^1].Step);
        Assert.Equal(FinalWeights(reference), FinalWeights(run));
    }
}
