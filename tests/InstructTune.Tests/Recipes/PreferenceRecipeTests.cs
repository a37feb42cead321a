using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Common;
using InstructTune.Data.Loading;
using InstructTune.Data.Records;
using InstructTune.Data.Preference;
using InstructTune.Data.Templating;
using InstructTune.Models;
using InstructTune.Recipes;
using InstructTune.Tokenizers;
using InstructTune.Tokenizers.Training;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Recipes;

/// <summary>Feedback tuning through the fine-tune recipe (training.objective): data layouts, bad input, LoRA/full, resume.</summary>
public class PreferenceRecipeTests
{
    /// <summary>"What is a+b?" pairs: the right sum chosen, a near miss rejected (a task the tiny model can learn).</summary>
    private static List<string> SumPairs(int n, bool styled = false) => Enumerable.Range(0, n).Select(i =>
    {
        int a = i % 7, b = i / 7 % 5;
        return styled
            ? JsonSerializer.Serialize(new { prompt = $"What is {a}+{b}?", chosen = $"{a + b}, surely.", rejected = $"{a + b + 1 + i % 2}, maybe?" })
            : JsonSerializer.Serialize(new { prompt = $"What is {a}+{b}?", chosen = $"{a + b}", rejected = $"{a + b + 1 + i % 2}" });
    }).ToList();

    /// <summary>A temp folder with the lines as pairs.jsonl and a random tiny Llama + BPE tokenizer trained on them.</summary>
    public static string Workspace(IReadOnlyList<string> lines, out string data)
    {
        var dir = Directory.CreateTempSubdirectory("pref").FullName;
        data = Path.Combine(dir, "pairs.jsonl");
        File.WriteAllLines(data, lines);
        var modelDir = Path.Combine(dir, "base");
        var options = new BpeTrainerOptions(VocabSize: 300, MinFrequency: 1);
        ByteLevelBpeTrainer.Save(ByteLevelBpeTrainer.Train(lines, options), options, modelDir);
        RandomCheckpoint.Create(new LlamaConfig { VocabSize = 300, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 1,
            NumAttentionHeads = 2, NumKeyValueHeads = 2, MaxPositionEmbeddings = 128 }, modelDir, 1, DType.F32);
        return modelDir;
    }

    private static TrainConfig Config(string model, string data, params string[] more) => ConfigLoader.LoadFromString<TrainConfig>("",
        [$"model.path={model}", $"data.path={data}", $"checkpoint.output_dir={Directory.CreateTempSubdirectory("run").FullName}",
         "logging.tensor_board=false", "data.template=chatml", "data.max_seq_len=96", "training.micro_batch_size=8", .. more]);

    [Fact]
    public void LoraDpoLearnsThePreferenceAndKeepsOneCopyOfTheBase()
    {
        // A preference the tiny model can pick up in a few steps: the chosen answers share a style the rejected ones lack.
        var model = Workspace(SumPairs(60, styled: true), out var data);
        var config = Config(model, data, "training.objective=dpo", "preference.beta=0.5", "training.learning_rate=1e-2",
            "training.max_steps=25", "lora.alpha=16", "training.lr_scheduler=constant", "data.validation_fraction=0.2", "eval.every_steps=25", "lora.rank=8");
        var recipe = FineTuneRecipe.Setup(config);
        Assert.All(recipe.Trainer.Trainable, t => Assert.Contains(".lora_", t.Name));
        var metrics = new List<IReadOnlyDictionary<string, double>>();
        var summary = recipe.Train(r => metrics.Add(r.Metrics!), quiet: true);
        Assert.Equal(25, summary.Steps);
        // At step 1 the policy is the reference: every reward is 0 and the loss is ln 2.
        Assert.Equal(0, metrics[0]["rewards/margins"], 6);
        Assert.True(metrics[^1]["rewards/margins"] > 0.5, string.Join("; ", metrics.Select(m => $"{m["rewards/margins"]:G3} {m["rewards/accuracies"]:G3} {m["logps/chosen"]:G4}")));
        Assert.True(summary.FinalLoss < 0.5, $"final DPO loss {summary.FinalLoss}");
        var lines = File.ReadAllLines(Path.Combine(summary.RunDir, "metrics.jsonl"));
        Assert.Contains("\"eval_rewards/accuracies\"", lines[^1]);
        Assert.True(File.Exists(Path.Combine(summary.ExportDir, "adapter_model.safetensors")));
        // One copy of the base: LoRA wraps the loaded Linear layers, nothing else holds base weights.
        Assert.False(File.Exists(Path.Combine(summary.RunDir, PreferenceSetup.ReferenceFile)));
    }

    [Fact]
    public void FullFineTuningDpoCachesTheReferenceAndResumes()
    {
        var model = Workspace(SumPairs(24), out var data);
        string[] keys = ["training.objective=dpo", "training.method=full", "training.learning_rate=1e-3", "training.max_steps=4",
            "checkpoint.save_every_steps=2", "training.gradient_accumulation_steps=2", "training.micro_batch_size=4"];
        var config = Config(model, data, keys);
        var first = FineTuneRecipe.Setup(config);
        first.Trainer.TrainStep(); first.Trainer.TrainStep();
        first.SaveCheckpoint();
        first.Dispose();   // releases the run folder (run.lock) for the resume below
        var cache = Path.Combine(config.Checkpoint.OutputDir, PreferenceSetup.ReferenceFile);
        Assert.True(File.Exists(cache));
        var straight = FineTuneRecipe.Setup(Config(model, data, keys)).Train(quiet: true);
        var resumed = FineTuneRecipe.Setup(config, resume: "latest").Train(quiet: true);
        Assert.Equal(straight.LossCurve[^1].Loss, resumed.LossCurve[^1].Loss, 10);
        File.Delete(cache);
        Assert.Contains("precompute_ref_log_probs", Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(config, resume: "latest")).Message);
    }

    [Theory]
    [InlineData("orpo")]
    [InlineData("simpo")]
    [InlineData("ipo")]
    public void OtherPairwiseObjectivesTrainThroughTheRecipe(string objective)
    {
        var model = Workspace(SumPairs(16), out var data);
        var summary = FineTuneRecipe.Setup(Config(model, data, $"training.objective={objective}", "training.max_steps=2")).Train(quiet: true);
        Assert.True(double.IsFinite(summary.FinalLoss));
        Assert.Contains("rewards/accuracies", File.ReadAllText(Path.Combine(summary.RunDir, "metrics.jsonl")));
    }

    [Fact]
    public void BadFeedbackRecordsAreRefusedOrSkippedAndCounted()
    {
        var lines = SumPairs(10);
        lines.Add("""{"prompt":"What is 1+1?","chosen":"2"}""");                       // no rejected
        lines.Add("""{"prompt":"What is 1+1?","rejected":"3"}""");                     // no chosen
        lines.Add("""{"prompt":"What is 2+2?","chosen":"4","rejected":"4"}""");        // identical
        lines.Add(JsonSerializer.Serialize(new { prompt = string.Join(" ", Enumerable.Repeat("What is 1+1?", 60)), chosen = "2", rejected = "3" }));
        var model = Workspace(lines, out var data);
        var strict = Assert.Throws<DataFormatException>(() => FineTuneRecipe.Setup(Config(model, data, "training.objective=dpo")));
        Assert.Contains(":11", strict.Message);
        Assert.Contains("rejected", strict.Message);

        var config = Config(model, data, "training.objective=dpo", "preference.skip_invalid_records=true");
        FineTuneRecipe.Setup(config);
        var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(config.Checkpoint.OutputDir, "data", PreferenceSetup.StatsFile))).RootElement;
        Assert.Equal(14, stats.GetProperty("records_read").GetInt32());
        Assert.Equal(10, stats.GetProperty("items_kept").GetInt32());
        var reasons = stats.GetProperty("rejected_by_reason");
        Assert.Equal(2, reasons.GetProperty(RejectReason.MissingField).GetInt32());
        Assert.Equal(1, reasons.GetProperty(PreferenceRecords.IdenticalPair).GetInt32());
        Assert.Equal(1, reasons.GetProperty(PreferenceRecords.PromptTooLong).GetInt32());
        Assert.Equal(4, File.ReadAllLines(Path.Combine(config.Checkpoint.OutputDir, "data", "rejected.jsonl")).Length);
    }

    [Fact]
    public void KtoRecordsNeedALabelAndSettingsOfOtherObjectivesAreRefused()
    {
        var lines = new List<string>
        {
            """{"prompt":"What is 1+1?","completion":"2","label":true}""",
            """{"prompt":"What is 1+2?","completion":"5","label":false}""",
            """{"prompt":"What is 2+2?","completion":"4"}""",
        };
        var model = Workspace(lines, out var data);
        var e = Assert.Throws<DataFormatException>(() => FineTuneRecipe.Setup(Config(model, data, "training.objective=kto")));
        Assert.Contains("label", e.Message);
        Assert.Contains(":3", e.Message);
        Assert.Contains("loss", Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, data, "training.objective=kto", "loss.lambda_instruction=2"))).Message);
        Assert.Contains("preference.beta", Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, data, "training.objective=kto", "preference.beta=0"))).Message);
    }

    [Fact]
    public void EveryRecordLayoutReadsToThePromptAndItsCompletions()
    {
        FeedbackRecord Map(string json) => PreferenceRecords.Map(JsonDocument.Parse(json).RootElement, default, 0.5);
        var trl = Map("""{"prompt":[{"role":"user","content":"Hi"}],"chosen":[{"role":"assistant","content":"Hello"}],"rejected":[{"role":"assistant","content":"Go"}]}""");
        Assert.Equal(("Hi", "Hello", "Go"), (trl.Prompt[0].Content, trl.Chosen, trl.Rejected));
        var implicitPrompt = Map("""{"chosen":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}],"rejected":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Go"}]}""");
        Assert.Equal(("Hi", "Hello", "Go"), (implicitPrompt.Prompt.Single().Content, implicitPrompt.Chosen, implicitPrompt.Rejected));
        var alpaca = Map("""{"instruction":"Add","input":"1 2","chosen":"3","rejected":"4"}""");
        Assert.Equal("Add\n1 2", alpaca.Prompt.Single().Content);
        var sharegpt = Map("""{"conversations":[{"from":"human","value":"Hi"}],"chosen":{"from":"gpt","value":"Hello"},"rejected":{"from":"gpt","value":"Go"}}""");
        Assert.Equal(("user", "Hello", "Go"), (sharegpt.Prompt.Single().Role, sharegpt.Chosen, sharegpt.Rejected));
        var kto = Map("""{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}],"label":false}""");
        Assert.Equal(("Hi", "Hello", false, false), (kto.Prompt.Single().Content, kto.Chosen, kto.Desirable, kto.IsPair));
        Assert.True(Map("""{"prompt":"Hi","completion":"Hello","score":0.7}""").Desirable);
        Assert.False(Map("""{"prompt":"Hi","completion":"Hello","score":0.2}""").Desirable);
    }

    [Fact]
    public void KtoOnTheLlamaFactoryDemoUsesTheQwenChatTemplateAndLogsKl()
    {
        var source = SharedTestData.Path("datasets", "llamafactory-demo", "kto_en_demo.json");
        var tokenizerDir = SharedTestData.Path("tokenizers", "qwen2.5");
        var tokenizer = TokenizerLoader.Load(tokenizerDir);
        var template = PreferenceLoader.Template("chat", tokenizerDir);
        var (data, stats) = PreferenceLoader.Load(source, paired: false, tokenizer, template, maxSeqLen: 1024, padId: tokenizer.EosId ?? 0,
            scoreThreshold: 0.5, skipInvalid: false);
        Assert.Equal(stats.RecordsRead, stats.ItemsKept + stats.RejectedByReason.GetValueOrDefault(PreferenceRecords.PromptTooLong));
        Assert.True(stats.ItemsKept > 200);
        Assert.True(stats.Desirable > 0 && stats.Undesirable > 0);
        // Chat template applied: the completion is labelled from the assistant turn, ending with <|im_end|> (then EOS when it fits).
        var first = data.Sequences[0];
        var text = tokenizer.Decode(first.Ids);
        Assert.StartsWith("<|im_start|>system", text);
        int start = PreferenceData.CompletionStart(first);
        Assert.Contains("<|im_start|>assistant", tokenizer.Decode(first.Ids[..start]));
        Assert.DoesNotContain("<|im_start|>", tokenizer.Decode(first.Ids[start..]));
    }
}
