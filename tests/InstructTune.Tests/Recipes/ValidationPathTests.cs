using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Recipes;
using InstructTune.Tokenizers;
using InstructTune.Tokenizers.Training;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Recipes;

/// <summary>
/// Issue 12: data.validation_path feeds the evaluation loss through the training data pipeline, and
/// eval.generation_samples writes greedy generations of held-out prompts at each evaluation.
/// </summary>
public class ValidationPathTests
{
    private static readonly string[] HeldOutWords = ["apple", "river", "mountain", "violet", "thunder"];

    private static (string Model, string Train, string Valid, string Dir) Workspace()
    {
        var dir = Directory.CreateTempSubdirectory("valpath").FullName;
        var train = Enumerable.Range(0, 24).Select(i => JsonSerializer.Serialize(new { instruction = $"Say {i}.", input = "", output = $"{i}" })).ToList();
        var valid = HeldOutWords.Select(w => JsonSerializer.Serialize(new { instruction = $"Spell the word {w}.", input = "", output = w })).ToList();
        var modelDir = Path.Combine(dir, "base");
        var options = new BpeTrainerOptions(VocabSize: 280, MinFrequency: 1);
        ByteLevelBpeTrainer.Save(ByteLevelBpeTrainer.Train(train.Concat(valid).ToList(), options), options, modelDir);
        RandomCheckpoint.Create(new LlamaConfig { VocabSize = 280, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 1,
            NumAttentionHeads = 2, NumKeyValueHeads = 2, MaxPositionEmbeddings = 256 }, modelDir, 1, DType.F32);
        var trainPath = Path.Combine(dir, "train.jsonl");
        var validPath = Path.Combine(dir, "valid.jsonl");
        File.WriteAllLines(trainPath, train);
        File.WriteAllLines(validPath, valid);
        return (modelDir, trainPath, validPath, dir);
    }

    private static TrainConfig Config(string model, string data, string dir, params string[] extra) =>
        ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={model}", $"data.path={data}", "data.max_seq_len=200", "data.dedup=off",
            $"checkpoint.output_dir={Path.Combine(dir, "run-" + Guid.NewGuid().ToString("N")[..6])}", "training.max_steps=2", "training.micro_batch_size=2",
            "logging.tensor_board=false", .. extra]);

    /// <summary>Mean response-token loss of the model over the examples, straight from the model's forward (summed per example).</summary>
    private static double IndependentLoss(LlamaModel model, IEnumerable<InstructTune.Data.Records.TokenizedExample> examples)
    {
        double sum = 0; int tokens = 0;
        using var tape = Tape.Record(recordGrad: false);
        foreach (var e in examples)
        {
            var o = model.Forward(new LlamaBatch(new IntTensor(e.Ids, 1, e.Length)) { Labels = new IntTensor(e.Labels, 1, e.Length) },
                new LlamaForwardOptions { Reduction = LossReduction.Sum });
            sum += o.Loss!.Item(); tokens += o.LossTokens;
        }
        return sum / tokens;
    }

    [Fact]
    public void TheEvaluationLossIsComputedOnTheValidationFile()
    {
        var (model, train, valid, dir) = Workspace();
        using var withFile = FineTuneRecipe.Setup(Config(model, train, dir, $"data.validation_path={valid}", "data.validation_fraction=0.25"));
        var data = withFile.Data!;
        // The held-out set is the file's five examples; nothing is split off the training data.
        Assert.Equal(HeldOutWords.Length, data.Validation.Count);
        Assert.Equal(24, data.Datasets.Single().Train.Count);
        var tokenizer = TokenizerLoader.Load(model);
        var responses = data.Validation.Select(e => tokenizer.Decode(e.Labels.Where(l => l >= 0).ToArray(), skipSpecialTokens: true).Trim()).ToList();
        foreach (var w in HeldOutWords) Assert.Contains(responses, r => r.StartsWith(w, StringComparison.Ordinal));

        double loss = withFile.ValidationLoss();
        Assert.Equal(IndependentLoss(withFile.Model, data.Validation), loss, 1e-4 * Math.Abs(loss));

        // The split-off fraction of the training data gives another loss on the same (untrained) weights.
        using var split = FineTuneRecipe.Setup(Config(model, train, dir, "data.validation_fraction=0.25"));
        Assert.NotEmpty(split.Data!.Validation);
        Assert.True(Math.Abs(split.ValidationLoss() - loss) > 1e-3, $"split {split.ValidationLoss()} vs file {loss}");

        // Training evaluates on the file (eval.every_steps) and logs that loss.
        using var run = FineTuneRecipe.Setup(Config(model, train, dir, $"data.validation_path={valid}", "eval.every_steps=2", "training.method=full"));
        var summary = run.Train(quiet: true);
        Assert.NotNull(summary.ValidationLoss);
        Assert.Equal(IndependentLoss(run.Model, run.Data!.Validation), summary.ValidationLoss!.Value, 1e-4 * summary.ValidationLoss.Value);
    }

    [Fact]
    public void AMissingValidationFileIsRefusedWithTheKey()
    {
        var (model, train, _, dir) = Workspace();
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, train, dir, $"data.validation_path={Path.Combine(dir, "nope.jsonl")}")));
        Assert.Contains("data.validation_path", e.Message);
        Assert.Contains("nope.jsonl", e.Message);
    }

    [Fact]
    public void GenerationSamplesWithoutEvaluationsAreRefusedNotIgnored()
    {
        var config = ConfigLoader.LoadFromString<TrainConfig>("", ["eval.generation_samples=3"]);
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Validate(config));
        Assert.Contains("eval.generation_samples", e.Message);
        Assert.Contains("eval.every_steps", e.Message);
        FineTuneRecipe.Validate(new TrainConfig());   // the defaults pass

        var (model, train, _, dir) = Workspace();
        var (rc, _, err) = PreparePipelineCli.Run("train", $"model.path={model}", $"data.path={train}", "data.max_seq_len=200", "eval.generation_samples=3",
            $"checkpoint.output_dir={Path.Combine(dir, "cli-run")}", "training.max_steps=1", "logging.tensor_board=false", "logging.progress=false");
        Assert.Equal(2, rc);
        Assert.Contains("eval.generation_samples", err);
        Assert.DoesNotContain("   at ", err);
        // With evaluations but no held-out data: refused before step 1, naming the key.
        e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Setup(Config(model, train, dir, "eval.generation_samples=3", "eval.every_steps=2", "data.validation_fraction=0")));
        Assert.Contains("eval.generation_samples", e.Message);
        Assert.Contains("held-out", e.Message);
    }

    /// <summary>eval.generation_samples: at each evaluation the first N held-out prompts are continued greedily and
    /// written to run_dir/generations/step_NNNNNN.jsonl; the last evaluation's generations are exactly what the
    /// inference engine (KV-cached Generator over the exported adapter) produces from the same prompt ids.</summary>
    [Fact]
    public void GenerationSamplesAreWrittenAtEachEvaluation()
    {
        var (model, train, valid, dir) = Workspace();
        var config = Config(model, train, dir, $"data.validation_path={valid}", "eval.every_steps=2", "training.max_steps=4", "eval.generation_samples=3");
        using var run = FineTuneRecipe.Setup(config);
        var summary = run.Train(quiet: true);
        var files = Directory.GetFiles(Path.Combine(config.Checkpoint.OutputDir, "generations")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["step_000002.jsonl", "step_000004.jsonl"], files);
        var lines = File.ReadAllLines(Path.Combine(config.Checkpoint.OutputDir, "generations", "step_000004.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(3, lines.Count);
        using var loaded = InstructTune.Evaluation.ModelBackends.LoadedModel.Load(model, summary.ExportDir);
        for (int i = 0; i < 3; i++)
        {
            var o = lines[i];
            Assert.Contains($"Spell the word {HeldOutWords[i]}.", o.GetProperty("prompt").GetString());
            Assert.StartsWith(HeldOutWords[i], o.GetProperty("reference").GetString()!.Trim());
            int[] Ids(string name) => o.GetProperty(name).EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var generated = Ids("generated_ids");
            Assert.InRange(generated.Length, 1, 256);
            var expected = InstructTune.Generation.Generator.Generate(loaded.Model, [Ids("prompt_ids")], new InstructTune.Generation.GenerationOptions
            {
                MaxNewTokens = generated.Length, Temperature = 0, StopTokenIds = loaded.Model.Config.EosTokenIds,
            })[0].GeneratedIds;
            Assert.Equal(expected, generated);
            Assert.Equal(loaded.Tokenizer.Decode(generated, skipSpecialTokens: true), o.GetProperty("generation").GetString());
        }
    }
}
