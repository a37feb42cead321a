using System.Text.Json;
using InstructTune.Recipes;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Evaluation.ModelBackends;

/// <summary>
/// End to end with the lead's trainer: a LoRA adapter fine-tuned (alpaca template) on a suite's reference answers
/// must make <c>itune eval model --adapter</c> report a lower reference perplexity than the base model, close to
/// exp(final training loss): the
/// adapter goes from the trainer's PEFT files into evaluation intact (a dropped or mis-scaled adapter fails). On a
/// random base model the adapter mostly learns the answers' token statistics, so the prompt format barely matters here.
/// </summary>
[Collection("Console")]
public class TrainedAdapterTests
{
    private static readonly (string Id, string Instruction, string Reference)[] Items =
    [
        ("a", "What is the capital of France?", "The capital is Paris."),
        ("b", "Write the word hello in all capital letters.", "HELLO"),
        ("c", "List 3 primary colours as a bullet list.", "- red\n- blue\n- yellow"),
        ("d", "Add 4 and 5, then multiply the result by 2.", "The answer is 18."),
    ];

    [Fact]
    public void FineTunedAdapterLowersReferencePerplexity()
    {
        var dir = Directory.CreateTempSubdirectory("evalmodel-train").FullName;
        File.WriteAllLines(Path.Combine(dir, "train.jsonl"), Enumerable.Repeat(Items, 8).SelectMany(x => x)
            .Select(i => JsonSerializer.Serialize(new { instruction = i.Instruction, input = "", output = i.Reference })));
        var suite = Path.Combine(dir, "suite.json");
        File.WriteAllText(suite, JsonSerializer.Serialize(new
        {
            name = "trained",
            instructions = Items.Select(i => new { id = i.Id, instruction = i.Instruction, references = new[] { i.Reference } }),
        }));
        var runDir = Path.Combine(dir, "run");
        File.WriteAllText(Path.Combine(dir, "train.yaml"), $"""
            model:
              path: {TinyEvalModel.Path}
            data:
              path: {Path.Combine(dir, "train.jsonl")}
              format: alpaca
              template: alpaca
              max_seq_len: 128
              validation_fraction: 0
            training:
              method: lora
              max_steps: 40
              micro_batch_size: 8
              gradient_accumulation_steps: 1
              learning_rate: 0.02
              warmup_steps: 2
              seed: 7
            lora:
              rank: 8
              alpha: 16
            checkpoint:
              save_every_steps: 1000
              keep_last: 1
            logging:
              tensor_board: false
            """);
        var config = ConfigLoader.Load<TrainConfig>(Path.Combine(dir, "train.yaml"), [$"checkpoint.output_dir={runDir}"]);
        var summary = FineTuneRecipe.Setup(config).Train(quiet: true);
        var adapter = Path.Combine(runDir, "adapter");

        double Perplexity(params string[] extra)
        {
            var outDir = Path.Combine(dir, "eval-" + extra.Length);
            var (rc, _, err) = CliCapture.Run(["eval", "model", "--model", TinyEvalModel.Path, "--suite", suite, "--out", outDir,
                "--template", "alpaca", "--max-new-tokens", "8", .. extra]);
            Assert.True(rc == 0, err);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")));
            return doc.RootElement.GetProperty("Model").GetProperty("ReferencePerplexity").GetProperty("Perplexity").GetDouble();
        }

        double baseline = Perplexity(), tuned = Perplexity("--adapter", adapter);
        Assert.True(baseline > 100, $"random base model: perplexity {baseline}");
        string detail = $"adapter perplexity {tuned} vs base {baseline}; training loss {summary.FinalLoss} (curve {string.Join(", ", summary.LossCurve.Select(x => x.Loss.ToString("0.00")))})";
        Assert.True(tuned < 0.8 * baseline, detail);
        // The last step saw every pair twice: its loss (which also scores the EOS token) predicts the evaluation's
        // perplexity of the same answers to within a few tens of percent; a dropped adapter would give the base's.
        Assert.InRange(tuned / Math.Exp(summary.FinalLoss), 0.75, 1.33);
    }
}
