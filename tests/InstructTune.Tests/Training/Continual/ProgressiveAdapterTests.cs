using System.Diagnostics;
using System.Text.Json;
using InstructTune.Data.Batching;
using InstructTune.Engine.Autograd;
using InstructTune.Models;
using InstructTune.Peft.Progressive;
using InstructTune.Recipes;
using InstructTune.Training.Checkpointing;
using InstructTune.Training.Config;
using InstructTune.Training.Continual;
using InstructTune.Training.Losses;

namespace InstructTune.Tests.Training.Continual;

/// <summary>
/// Progressive adapters (training.method progressive) on two stages of the tiny model (task A: add two numbers; task B:
/// repeat a word): the stage-1 column's outputs after stage 2 are bit-identical to those right after stage 1, while the
/// stage-2 column learned task B through its own weights and lateral scalars; the forgetting matrix shows no forgetting
/// at all; each finished column is exported as a plain LoRA adapter; bad combinations are refused naming the key.
/// </summary>
public class ProgressiveAdapterTests
{
    private static readonly Lazy<(string Dir, string ModelDir)> Workspace = new(() =>
    {
        var (dir, modelDir, data) = TinyTrainingWorkspace.Create("progressive", records: 160, maxPositions: 256);
        var lines = File.ReadAllLines(data);
        File.WriteAllLines(Path.Combine(dir, "add.jsonl"), lines.Where((_, i) => i % 2 == 0));
        File.WriteAllLines(Path.Combine(dir, "repeat.jsonl"), lines.Where((_, i) => i % 2 == 1));
        return (dir, modelDir);
    });

    private static TrainConfig Config(string runName, string extra = "", bool twoStages = true)
    {
        var (dir, modelDir) = Workspace.Value;
        string second = twoStages ? $"\n    - {{path: {Path.Combine(dir, "repeat.jsonl")}, format: alpaca, stage: 2}}" : "";
        string stages = twoStages ? "[{max_steps: 30}, {max_steps: 20}]" : "[{max_steps: 30}]";
        return ConfigLoader.LoadFromString<TrainConfig>($$"""
            model: {path: {{modelDir}}}
            data:
              template: alpaca
              max_seq_len: 256
              validation_fraction: 0.15
              datasets:
                - {path: {{Path.Combine(dir, "add.jsonl")}}, format: alpaca, stage: 1}{{second}}
              stages: {{stages}}
            training: {method: progressive, micro_batch_size: 4, learning_rate: 0.01, lr_scheduler: constant, seed: 3}
            lora: {rank: 4, alpha: 8}
            checkpoint: {output_dir: {{Path.Combine(dir, "runs", runName)}}, keep_last: 10}
            logging: {tensor_board: false}
            {{extra}}
            """);
    }

    private static float[] Logits(LlamaModel model, Batch b)
    {
        using var _ = Tape.Record(recordGrad: false);
        return model.Forward(InstructionObjective.ToModelBatch(b), new LlamaForwardOptions { ReturnLogits = true }).Logits!.ToArray();
    }

    [Fact]
    public void StageOneOutputsWithTheStageOneColumnAreBitIdenticalAfterStageTwo()
    {
        var recipe = FineTuneRecipe.Setup(Config("two-stages"));
        var model = recipe.Model;
        var taskA = recipe.Data!.Stages[0].Where(e => e.LearnedTokens > 0).Take(4).ToList();
        var batch = new DataSampler(taskA, new BatchOptions(BatchMode.Bucketed, 4, 256), 0, 0).Next();
        float[]? afterStage1 = null, column2AtStart = null, baseLogits = Logits(model, batch);
        var run = recipe.Train(r =>
        {
            if (r.Step != 30) return;
            // Stage 1 has ended: column 2 is now selected (and fresh, so it computes the base model exactly).
            Assert.Equal(1, ProgressiveInjector.Find(model)[0].Layer.Active);
            column2AtStart = Logits(model, batch);
            ProgressiveInjector.Show(model, 0);
            afterStage1 = Logits(model, batch);
            ProgressiveInjector.Show(model, 1);
        }, quiet: true);
        Assert.Equal(50, run.Steps);
        Assert.Equal(baseLogits, column2AtStart);
        Assert.NotEqual(baseLogits, afterStage1);                   // stage 1 trained column 1
        ProgressiveInjector.Show(model, 0);
        Assert.Equal(afterStage1, Logits(model, batch));            // bit for bit after stage 2
        ProgressiveInjector.Show(model, 1);
        Assert.NotEqual(afterStage1, Logits(model, batch));         // column 2 is its own function
        var layer = ProgressiveInjector.Find(model)[0].Layer;
        Assert.NotEqual(0f, layer.Columns[1].Lateral[0].Span[0]);  // the lateral scalar trained

        // The forgetting matrix: task A's scores after stage 2 equal those after stage 1 exactly (it is scored with column 1).
        var f = JsonDocument.Parse(File.ReadAllText(Path.Combine(run.RunDir, ForgettingReport.JsonFile))).RootElement;
        Assert.Equal("progressive", f.GetProperty("strategy").GetString());
        var loss = f.GetProperty("matrices").GetProperty("loss");
        Assert.Equal(loss[1][0].GetDouble(), loss[2][0].GetDouble());
        Assert.True(loss[2][1].GetDouble() < loss[1][1].GetDouble(), "stage 2 did not learn task B");
        Assert.Equal(0.0, f.GetProperty("summary").GetProperty("token_accuracy").GetProperty("backward_transfer").GetDouble());
        // Each finished column is a plain LoRA adapter: column 1 of rank 4, column 2 (with its lateral) of rank 8.
        foreach (var (stage, rank) in new[] { (1, 4), (2, 8) })
        {
            var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(ContinualStages.StageDir(run.RunDir, stage), "adapter", "adapter_config.json"))).RootElement;
            Assert.Equal("LORA", cfg.GetProperty("peft_type").GetString());
            Assert.Equal(rank, cfg.GetProperty("r").GetInt32());
            Assert.Equal(2.0 * rank, cfg.GetProperty("lora_alpha").GetDouble());
        }
        // …that the inference path (score/generate/eval/serve) reads: stage 2's adapter over the base = column 2's logits.
        using var inference = InstructTune.Models.Inference.InferenceModel.Load(Workspace.Value.ModelDir);
        InstructTune.Peft.PeftRegistry.ApplyTo(inference, Path.Combine(ContinualStages.StageDir(run.RunDir, 2), "adapter"));
        int V = model.Config.VocabSize, T = Array.IndexOf(batch.DocumentIds[..batch.T], -1) is var pad and >= 0 ? pad : batch.T;   // row 0 without padding
        var served = inference.Forward([new InstructTune.Models.Inference.SequenceChunk(inference.CreateCache(T), batch.Ids[..T], AllLogits: true)]);
        var trained = Logits(model, batch)[..(T * V)];
        for (int i = 0; i < served.Length; i++) Assert.True(Math.Abs(served[i] - trained[i]) <= 1e-4f, $"logit {i}: {served[i]} vs {trained[i]}");
    }

    /// <summary>
    /// `itune train` as a child process, SIGKILLed inside stage 2 (after step 40 is logged; the last checkpoint is stage 1's
    /// end, step 30), resumed with --resume latest in another child: the final weights and forgetting.json are
    /// byte-identical to an uninterrupted in-process run (the resumed run re-selects and re-freezes the columns).
    /// </summary>
    [Fact]
    public void AKilledRunResumesToTheSameWeightsAndForgettingMatrix()
    {
        var reference = FineTuneRecipe.Setup(Config("kill-reference")).Train(quiet: true);
        var config = Config("kill-child");
        var (dir, _) = Workspace.Value;
        var yaml = Path.Combine(dir, "kill-child.yaml");
        File.WriteAllText(yaml, ConfigLoader.ToYaml(config));
        string run = config.Checkpoint.OutputDir;
        Process Start(bool resume)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "itune.dll"), "train", "--config", yaml }) psi.ArgumentList.Add(a);
            if (resume) { psi.ArgumentList.Add("--resume"); psi.ArgumentList.Add("latest"); }
            var p = Process.Start(psi)!;
            p.OutputDataReceived += (_, _) => { }; p.ErrorDataReceived += (_, _) => { };
            p.BeginOutputReadLine(); p.BeginErrorReadLine();
            return p;
        }
        var first = Start(resume: false);
        var clock = Stopwatch.StartNew();
        var metrics = Path.Combine(run, "metrics.jsonl");
        while (!(File.Exists(metrics) && File.ReadLines(metrics).Any(l => l.StartsWith("{\"step\":40,"))))
        {
            Assert.False(first.HasExited, $"the training process exited (code {(first.HasExited ? first.ExitCode : 0)}) before step 40");
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(3), "timed out waiting for step 40");
            Thread.Sleep(20);
        }
        first.Kill(entireProcessTree: true);
        first.WaitForExit();
        Assert.Equal(30L, new CheckpointStore(run).List()[^1].Step);   // stage 1's end: the resume restarts inside stage 2
        var second = Start(resume: true);
        Assert.True(second.WaitForExit(TimeSpan.FromMinutes(3)), "the resumed run did not finish");
        Assert.Equal(0, second.ExitCode);
        byte[] Weights(string runDir) => File.ReadAllBytes(Path.Combine(new CheckpointStore(runDir).Latest()!, TrainerCheckpoint.WeightsFile));
        Assert.Equal(Weights(reference.RunDir), Weights(run));
        Assert.Equal(File.ReadAllText(Path.Combine(reference.RunDir, ForgettingReport.JsonFile)), File.ReadAllText(Path.Combine(run, ForgettingReport.JsonFile)));
    }

    [Fact]
    public void BadCombinationsAreRefusedNamingTheKey()
    {
        var one = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config("one-stage", twoStages: false)));
        Assert.Contains("training.method", one.Message);
        Assert.Contains("stages", one.Message);
        var ewc = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config("ewc", "loss: {ewc_lambda: 10}")));
        Assert.Contains("training.method", ewc.Message);
        var doraConfig = Config("dora");
        doraConfig.Lora.UseDora = true;
        var dora = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(doraConfig));
        Assert.Contains("lora.use_dora", dora.Message);
    }
}
