using InstructTune.Checkpoints;
using System.Text.Json;
using InstructTune.Recipes;
using InstructTune.Training.Checkpointing;
using InstructTune.Training.Config;
using InstructTune.Training.Continual;

namespace InstructTune.Tests.Training.Continual;

/// <summary>
/// Two stages (task A: add two numbers; task B: repeat a word) trained in sequence on one tiny model through the recipe
/// keys: stage boundaries checkpoint, the forgetting matrix is written, EWC's Fisher is saved per stage and protects
/// task A compared with no EWC, a run cancelled inside stage 2 resumes bit for bit, and loss.ewc_reference_path reads a
/// saved Fisher (another model's is refused naming the key).
/// </summary>
public class StagedRecipeTests
{
    private static readonly Lazy<(string Dir, string ModelDir)> Workspace = new(() =>
    {
        var (dir, modelDir, data) = TinyTrainingWorkspace.Create("continual", records: 160, maxPositions: 256);
        var lines = File.ReadAllLines(data);
        File.WriteAllLines(Path.Combine(dir, "add.jsonl"), lines.Where((_, i) => i % 2 == 0));
        File.WriteAllLines(Path.Combine(dir, "repeat.jsonl"), lines.Where((_, i) => i % 2 == 1));
        return (dir, modelDir);
    });

    private static TrainConfig Config(string runName, string extra = "", string stage2 = "")
    {
        var (dir, modelDir) = Workspace.Value;
        return ConfigLoader.LoadFromString<TrainConfig>($$"""
            model: {path: {{modelDir}}}
            data:
              template: alpaca
              max_seq_len: 256
              validation_fraction: 0.15
              datasets:
                - {path: {{Path.Combine(dir, "add.jsonl")}}, format: alpaca, stage: 1}
                - {path: {{Path.Combine(dir, "repeat.jsonl")}}, format: alpaca, stage: 2}
              stages:
                - {max_steps: 40}
                - {max_steps: 30{{stage2}}}
            training: {method: full, micro_batch_size: 4, learning_rate: 0.01, lr_scheduler: constant, seed: 3, max_grad_norm: 1.0}
            continual: {fisher_samples: 24}
            checkpoint: {output_dir: {{Path.Combine(dir, "runs", runName)}}, keep_last: 10}
            logging: {tensor_board: false}
            {{extra}}
            """);
    }

    private static JsonElement Forgetting(string runDir) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(runDir, ForgettingReport.JsonFile))).RootElement;

    private static double Cell(JsonElement f, string metric, int row, int col) =>
        f.GetProperty("matrices").GetProperty(metric)[row][col].GetDouble();

    private static readonly Lazy<(TrainingSummary Plain, TrainingSummary Ewc)> Runs = new(() =>
    {
        var plain = FineTuneRecipe.Setup(Config("plain")).Train(quiet: true);
        var ewc = FineTuneRecipe.Setup(Config("ewc", "loss: {ewc_lambda: 300000}")).Train(quiet: true);
        return (plain, ewc);
    });

    [Fact]
    public void StagesCheckpointAndWriteTheForgettingMatrix()
    {
        var run = Runs.Value.Plain;
        Assert.Equal(70, run.Steps);
        // A checkpoint at the end of stage 1 (step 40) to resume stage 2 from, and the final one.
        var store = new CheckpointStore(run.RunDir);
        Assert.Contains(store.List(), c => c.Step == 40);
        var f = Forgetting(run.RunDir);
        Assert.True(f.GetProperty("complete").GetBoolean());
        Assert.Equal(3, f.GetProperty("matrices").GetProperty("loss").GetArrayLength());   // start, after 1, after 2
        // Sequential tuning: stage 1 learns task A, stage 2 then makes it worse (forgetting), and learns task B.
        Assert.True(Cell(f, "loss", 1, 0) < Cell(f, "loss", 0, 0));
        Assert.True(Cell(f, "loss", 2, 0) > Cell(f, "loss", 1, 0), $"no forgetting: {Cell(f, "loss", 1, 0)} → {Cell(f, "loss", 2, 0)}");
        Assert.True(Cell(f, "loss", 2, 1) < Cell(f, "loss", 1, 1));
        // The summary is the formula applied to the written matrix.
        var acc = f.GetProperty("matrices").GetProperty("token_accuracy");
        double bwt = acc[2][0].GetDouble() - acc[1][0].GetDouble();
        Assert.Equal(bwt, f.GetProperty("summary").GetProperty("token_accuracy").GetProperty("backward_transfer").GetDouble(), 12);
        Assert.True(File.ReadAllText(Path.Combine(run.RunDir, ForgettingReport.HtmlFile)).Contains("<svg"));
        Assert.False(File.Exists(Path.Combine(ContinualStages.StageDir(run.RunDir, 1), StageFisher.FileName)));   // no EWC: no Fisher
    }

    [Fact]
    public void EwcAcrossStagesProtectsTheFirstTask()
    {
        var (plain, ewc) = Runs.Value;
        var fp = Forgetting(plain.RunDir);
        var fe = Forgetting(ewc.RunDir);
        Assert.Equal("ewc", fe.GetProperty("strategy").GetString());
        Assert.True(File.Exists(Path.Combine(ContinualStages.StageDir(ewc.RunDir, 1), StageFisher.FileName)));
        Assert.False(File.Exists(Path.Combine(ContinualStages.StageDir(ewc.RunDir, 2), StageFisher.FileName)));   // nothing follows stage 2
        // Stage 1 is the same run in both (EWC acts from stage 2 on).
        Assert.Equal(Cell(fp, "loss", 1, 0), Cell(fe, "loss", 1, 0), 12);
        // After stage 2, task A's loss rose less with EWC.
        double risePlain = Cell(fp, "loss", 2, 0) - Cell(fp, "loss", 1, 0), riseEwc = Cell(fe, "loss", 2, 0) - Cell(fe, "loss", 1, 0);
        Assert.True(risePlain > 1, $"no forgetting to protect against: task A's loss rose by {risePlain:F4}");
        Assert.True(riseEwc < 0.25 * risePlain, $"EWC did not protect task A: loss rise {riseEwc:F4} vs {risePlain:F4} without EWC");
        // …and stage 2 still learned task B.
        Assert.True(Cell(fe, "loss", 2, 1) < Cell(fe, "loss", 1, 1));
    }

    [Fact]
    public void AGemKeepsTheFirstTasksLossLowerThanSequentialTuning()
    {
        var plain = Forgetting(Runs.Value.Plain.RunDir);
        var config = Config("agem");
        (config.Continual.Gem, config.Continual.MemoryPerStage, config.Continual.MemoryBatch) = (GemMode.Agem, 32, 8);
        var run = FineTuneRecipe.Setup(config).Train(quiet: true);
        var agem = Forgetting(run.RunDir);
        Assert.Equal("a-gem", agem.GetProperty("strategy").GetString());
        Assert.Equal(Cell(plain, "loss", 1, 0), Cell(agem, "loss", 1, 0), 12);   // stage 1 has no memory yet: the same run
        double risePlain = Cell(plain, "loss", 2, 0) - Cell(plain, "loss", 1, 0), riseAgem = Cell(agem, "loss", 2, 0) - Cell(agem, "loss", 1, 0);
        Assert.True(riseAgem < 0.5 * risePlain, $"A-GEM: task A's loss rose by {riseAgem:F4}, {risePlain:F4} without it");
        Assert.True(Cell(agem, "loss", 2, 1) < Cell(agem, "loss", 1, 1));   // and stage 2 still learned task B
        // GEM needs stages; a one-stage run with continual.gem is refused naming the key.
        var one = Config("gem-one-stage");
        one.Continual.Gem = GemMode.Gem;
        one.Data.Datasets.RemoveAt(1);
        one.Data.Stages.RemoveAt(1);
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(one));
        Assert.Contains("continual.gem", e.Message);
    }

    [Fact]
    public void ARunCancelledInsideStageTwoResumesBitForBit()
    {
        var full = Runs.Value.Ewc;
        var config = Config("ewc-resume", "loss: {ewc_lambda: 300000}");
        using (var cts = new CancellationTokenSource())
        {
            var recipe = FineTuneRecipe.Setup(config);
            recipe.Train(r => { if (r.Step == 52) cts.Cancel(); }, quiet: true, cancel: cts.Token);
        }
        var resumed = FineTuneRecipe.Setup(config, resume: "latest").Train(quiet: true);
        Assert.Equal(70, resumed.Steps);
        byte[] Weights(string runDir) => File.ReadAllBytes(Path.Combine(new CheckpointStore(runDir).Latest()!, TrainerCheckpoint.WeightsFile));
        Assert.Equal(Weights(full.RunDir), Weights(resumed.RunDir));
        Assert.Equal(File.ReadAllText(Path.Combine(full.RunDir, ForgettingReport.JsonFile)),
            File.ReadAllText(Path.Combine(resumed.RunDir, ForgettingReport.JsonFile)));
    }

    /// <summary>continual.l2_previous_lambda: stage 1 trains exactly as sequential tuning; its final weights are saved
    /// as the anchor; stage 2 ends nearer to them than sequential tuning does; a run cancelled inside stage 2 resumes
    /// bit for bit (it reads the anchor back); a single-stage run is refused naming the key.</summary>
    [Fact]
    public void L2TowardThePreviousStageAnchorsAtItsFinalWeightsAndResumes()
    {
        TrainConfig L2(string name) { var c = Config(name); c.Continual.L2PreviousLambda = 50; return c; }
        var plain = Runs.Value.Plain;
        var l2 = FineTuneRecipe.Setup(L2("l2")).Train(quiet: true);
        static Dictionary<string, float[]> Read(string file, string prefix = "")
        {
            using var f = SafetensorsFile.Open(file);
            return f.Tensors.Keys.ToDictionary(k => k[prefix.Length..], k => f.ReadF32(k));
        }
        string At(string runDir, int step) => Path.Combine(runDir, $"checkpoint-{step:D6}", TrainerCheckpoint.WeightsFile);
        var stage1 = Read(At(plain.RunDir, 40));
        Assert.Equal(stage1, Read(At(l2.RunDir, 40)));   // no penalty inside stage 1
        var anchor = Read(Path.Combine(ContinualStages.StageDir(l2.RunDir, 1), ContinualStages.L2AnchorFile), "anchor.");
        Assert.Equal(stage1, anchor);
        double Drift(string runDir) => Read(At(runDir, 70)).Sum(kv => kv.Value.Zip(stage1[kv.Key]).Sum(p => (double)(p.First - p.Second) * (p.First - p.Second)));
        double dPlain = Drift(plain.RunDir), dL2 = Drift(l2.RunDir);
        Assert.True(dL2 < 0.5 * dPlain, $"squared drift from the stage-1 weights: L2 {dL2}, sequential {dPlain}");

        var config = L2("l2-resume");
        using (var cts = new CancellationTokenSource())
            FineTuneRecipe.Setup(config).Train(r => { if (r.Step == 52) cts.Cancel(); }, quiet: true, cancel: cts.Token);
        var resumed = FineTuneRecipe.Setup(config, resume: "latest").Train(quiet: true);
        Assert.Equal(File.ReadAllBytes(At(l2.RunDir, 70)), File.ReadAllBytes(At(resumed.RunDir, 70)));

        var (dir, modelDir) = Workspace.Value;
        var one = ConfigLoader.LoadFromString<TrainConfig>($$"""
            model: {path: {{modelDir}}}
            data: {template: alpaca, max_seq_len: 256, validation_fraction: 0, path: {{Path.Combine(dir, "repeat.jsonl")}}, format: alpaca}
            training: {method: full, max_steps: 2}
            continual: {l2_previous_lambda: 1}
            checkpoint: {output_dir: {{Path.Combine(dir, "runs", "l2-one")}}}
            logging: {tensor_board: false}
            """);
        Assert.Contains("continual.l2_previous_lambda", Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(one)).Message);
    }

    [Fact]
    public void EwcReferencePathChangesTheResultAndAnotherModelsFileIsRefused()
    {
        var fisher = Path.Combine(ContinualStages.StageDir(Runs.Value.Ewc.RunDir, 1), StageFisher.FileName);
        // One stage of task B, protected by the Fisher and anchor of the EWC run's stage 1, vs without.
        var (dir, modelDir) = Workspace.Value;
        TrainConfig OneStage(string name, string loss) => ConfigLoader.LoadFromString<TrainConfig>($$"""
            model: {path: {{modelDir}}}
            data: {template: alpaca, max_seq_len: 256, validation_fraction: 0, path: {{Path.Combine(dir, "repeat.jsonl")}}, format: alpaca}
            training: {method: full, micro_batch_size: 4, learning_rate: 0.004, lr_scheduler: constant, seed: 3, max_steps: 4}
            checkpoint: {output_dir: {{Path.Combine(dir, "runs", name)}}}
            logging: {tensor_board: false}
            {{loss}}
            """);
        var with = FineTuneRecipe.Setup(OneStage("ref", $"loss: {{ewc_lambda: 3000, ewc_reference_path: {fisher}}}")).Train(quiet: true);
        var without = FineTuneRecipe.Setup(OneStage("noref", "")).Train(quiet: true);
        byte[] Weights(string runDir) => File.ReadAllBytes(Path.Combine(new CheckpointStore(runDir).Latest()!, TrainerCheckpoint.WeightsFile));
        Assert.NotEqual(Weights(without.RunDir), Weights(with.RunDir));

        var missing = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(OneStage("missing", "loss: {ewc_lambda: 1, ewc_reference_path: /nonexistent/fisher.safetensors}")));
        Assert.Contains("loss.ewc_reference_path", missing.Message);
        // A Fisher for LoRA parameters is not one for this full fine-tuning run.
        var lora = ConfigLoader.LoadFromString<TrainConfig>(ConfigLoader.ToYaml(OneStage("lora", "")) );
        lora.Training.Method = TuningMethod.Lora;
        lora.Loss.EwcLambda = 1;
        lora.Loss.EwcReferencePath = fisher;
        var other = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(lora));
        Assert.Contains("loss.ewc_reference_path", other.Message);
    }

    [Fact]
    public void StageLearningRatesFollowTheSchedule()
    {
        // Restarted cosine with 2 warm-up steps inside each stage, peaks 0.01 and 0.002; and one schedule scaled per stage.
        var restart = new StageSchedule(Engine.Optim.LrScheduleKind.Cosine, 2, 10, [4, 6], [0.01f, 0.002f], restart: true);
        double Cos(int s, int warm, int total) => s < warm ? (double)s / warm : 0.5 * (1 + Math.Cos(Math.PI * (s - warm) / (total - warm)));
        for (int s = 0; s < 10; s++)
        {
            double expected = s < 4 ? 0.01 * Cos(s, 2, 4) : 0.002 * Cos(s - 4, 2, 6);
            Assert.Equal(expected, restart.LearningRate(s), 6);
        }
        var scaled = new StageSchedule(Engine.Optim.LrScheduleKind.Linear, 0, 10, [4, 6], [0.01f, 0.002f], restart: false);
        for (int s = 0; s < 10; s++) Assert.Equal((s < 4 ? 0.01 : 0.002) * (1 - s / 10.0), scaled.LearningRate(s), 6);
    }

    [Fact]
    public void ForgettingSummaryFollowsTheDefinitions()
    {
        // Rows: start, after 1, after 2, after 3 (3 stages).
        double[][] R = [[0.1, 0.2, 0.3], [0.8, 0.25, 0.35], [0.6, 0.9, 0.4], [0.5, 0.7, 0.95]];
        var s = ForgettingReport.Summarise(R);
        Assert.Equal((0.5 + 0.7 + 0.95) / 3, s.AverageAccuracy, 12);
        Assert.Equal(((0.5 - 0.8) + (0.7 - 0.9)) / 2, s.BackwardTransfer, 12);
        Assert.Equal(((0.25 - 0.2) + (0.4 - 0.3)) / 2, s.ForwardTransfer, 12);
        Assert.Equal(((0.8 - 0.5) + (0.9 - 0.7)) / 2, s.Forgetting, 12);
    }
}

/// <summary>The continual strategies are `itune ablate` variants whose overrides bind to the recipe keys.</summary>
public class ContinualAblationVariantsTests
{
    [Fact]
    public void StrategiesAreAblationVariantsThatBind()
    {
        var variants = InstructTune.Recipes.Ablation.AblationVariants.Parse("continual-ewc,continual-online-ewc,continual-agem,continual-gem");
        var configs = variants.Select(v => ConfigLoader.LoadFromString<TrainConfig>("training: {learning_rate: 1.0e-4}\n", v.Overrides)).ToList();
        Assert.Equal(1000, configs[0].Loss.EwcLambda);
        Assert.Equal(0.9, configs[1].Continual.EwcGamma);
        Assert.Equal(GemMode.Agem, configs[2].Continual.Gem);
        Assert.Equal(GemMode.Gem, configs[3].Continual.Gem);
        Assert.Equal("gem", ContinualStages.Strategy(configs[3]));
    }
}
