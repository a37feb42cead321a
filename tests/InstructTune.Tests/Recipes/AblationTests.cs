using System.Text.Json;
using InstructTune.Recipes.Ablation;
using InstructTune.Tests.Training;

namespace InstructTune.Tests.Recipes;

/// <summary>itune ablate's recipe: every variant × seed trains from the same config; one JSON + HTML report with
/// mean ± std, parameter counts and step times; bad input refused before any training.</summary>
public class AblationTests
{
    private static string ConfigFile(string modelDir, string data)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("ablate-cfg").FullName, "recipe.yaml");
        File.WriteAllText(path, $"""
            model:
              path: {modelDir}
            data:
              path: {data}
              max_seq_len: 128
              template: "{RecipeSetupTests.ShortTemplate.Split('=', 2)[1]}"
              validation_fraction: 0.2
            training:
              max_steps: 2
              learning_rate: 0.01
            """);
        return path;
    }

    [Fact]
    public void EveryVariantAndSeedTrainsIntoOneReport()
    {
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var cfg = ConfigFile(modelDir, data);
        var outDir = Path.Combine(Directory.CreateTempSubdirectory("ablate").FullName, "out");
        var report = AblationRecipe.Run(cfg, [], AblationVariants.Parse("baseline,segments"), 2, outDir);

        Assert.True(report.Complete);
        Assert.Equal(4, report.Runs.Count);
        Assert.Equal([42, 43], report.Runs.Where(r => r.Variant == "segments").Select(r => r.Seed));
        var b = report.Variants.Single(v => v.Variant == "baseline");
        var s = report.Variants.Single(v => v.Variant == "segments");
        Assert.Equal(b.TrainableParams + 4 * 16, s.TrainableParams);              // the (4, hidden) segment table
        Assert.Equal(0.0, b.StepTimeOverhead);
        Assert.NotNull(s.EvalLossMean);
        var evals = report.Runs.Where(r => r.Variant == "segments").Select(r => r.EvalLoss!.Value).ToList();
        Assert.Equal(evals.Average(), s.EvalLossMean!.Value, 9);
        double std = Math.Sqrt(evals.Sum(x => (x - evals.Average()) * (x - evals.Average())) / (evals.Count - 1));
        Assert.Equal(std, s.EvalLossStd!.Value, 9);
        Assert.True(File.Exists(Path.Combine(report.Runs[3].RunDir, "adapter", "instruction_aware.safetensors")));

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, AblationRecipe.JsonFile)));
        Assert.Equal(2, json.RootElement.GetProperty("variants").GetArrayLength());
        var html = File.ReadAllText(Path.Combine(outDir, AblationRecipe.HtmlFile));
        Assert.Contains("segments", html);
        Assert.Contains("<svg", html);

        // The same folder again is refused: it holds this ablation.
        Assert.Throws<InstructTune.Common.InputException>(() => AblationRecipe.Run(cfg, [], AblationVariants.Parse("baseline"), 1, outDir));
    }

    [Fact]
    public void EveryRunIsEvaluatedOnTheSameSetsAndTheReportAggregatesTheMetrics()
    {
        var (modelDir, _) = RecipeSetupTests.Workspace();
        var dir = Directory.CreateTempSubdirectory("ablate-eval").FullName;
        string Line(int i, string task) => task == "say"
            ? $"{{\"instruction\":\"Say {i}.\",\"input\":\"\",\"output\":\"{i}\",\"task\":\"say\",\"complexity\":0}}"
            : $"{{\"instruction\":\"Say {i}, then say it again.\",\"input\":\"\",\"output\":\"{i} {i}\",\"task\":\"twice\",\"complexity\":2}}";
        var train = Path.Combine(dir, "train.jsonl");
        File.WriteAllLines(train, Enumerable.Range(0, 20).Select(i => Line(i, i % 2 == 0 ? "say" : "twice")));
        var heldout = Path.Combine(dir, "heldout.jsonl");
        File.WriteAllLines(heldout, Enumerable.Range(20, 6).Select(i => Line(i, i % 2 == 0 ? "say" : "twice")));
        var ifeval = Path.Combine(dir, "ifeval.jsonl");
        File.WriteAllLines(ifeval, File.ReadLines(TestPaths.SharedTestData("ifeval", "input_data.jsonl")).Take(5));
        var cfg = Path.Combine(dir, "recipe.yaml");
        File.WriteAllText(cfg, $"""
            model:
              path: {modelDir}
              instruction_aware:
                temperature_weight: 0
                temperature_targets:
                  say: 0.2
                  twice: 1.0
            data:
              path: {train}
              max_seq_len: 128
              template: "{RecipeSetupTests.ShortTemplate.Split('=', 2)[1]}"
              validation_fraction: 0.2
            training:
              max_steps: 2
              learning_rate: 0.01
            eval:
              heldout: [{heldout}]
              max_new_tokens: 3
              batch_size: 4
            """);
        var outDir = Path.Combine(dir, "out");
        var report = AblationRecipe.Run(cfg, [], AblationVariants.Parse("baseline,temperature_head"), 2, outDir,
            eval: new AblationEvalOptions { Limit = 4, IfevalPath = ifeval });
        Assert.Equal(4, report.Runs.Count);

        foreach (var run in report.Runs)
        {
            var m = run.Eval!;
            // Per run, from its own prediction files: 4 of the 6 held-out records, each line's exact match and level.
            var lines = File.ReadLines(Path.Combine(run.RunDir, "eval", "heldout", "predictions.jsonl"))
                .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
            Assert.Equal(4, lines.Count);
            Assert.Equal(lines.Average(l => l.GetProperty("metrics").GetProperty("exact").GetDouble()), m["heldout.exact"], 12);
            Assert.Equal(lines.Average(l => l.GetProperty("metrics").GetProperty("f1").GetDouble()), m["heldout.f1"], 12);
            // The records' own complexity (0 / 2) sets the level, pooled over the sets as level.*.
            foreach (var l in lines)
                Assert.Equal(l.GetProperty("task").GetString() == "say" ? "simple" : "multi-step", l.GetProperty("level").GetString());
            var multi = lines.Where(l => l.GetProperty("level").GetString() == "multi-step").ToList();
            Assert.Equal(multi.Average(l => l.GetProperty("metrics").GetProperty("exact").GetDouble()), m["level.multi-step.exact"], 12);
            // IFEval: 4 of the 5 prompts answered and checked; prompt-level strict = share of lines following all.
            var strict = File.ReadLines(Path.Combine(run.RunDir, "eval", "ifeval", "eval_results_strict.jsonl"))
                .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("follow_all_instructions").GetBoolean()).ToList();
            Assert.Equal(4, strict.Count);
            Assert.Equal(strict.Average(x => x ? 1.0 : 0.0), m["ifeval.prompt_strict"], 12);
            // Only the variant that trains the head reports its error, |τ − τ*| ≤ max(τ*) − min range.
            Assert.Equal(run.Variant == "temperature_head", m.ContainsKey("temperature.mae"));
            if (run.Variant == "temperature_head") Assert.InRange(m["temperature.mae"], 0, 1.95);
        }

        // The aggregation: mean and sample std over the seeds of every metric, from the per-run numbers above.
        foreach (var v in report.Variants)
        {
            var runs = report.Runs.Where(r => r.Variant == v.Variant).ToList();
            Assert.Equal(runs.SelectMany(r => r.Eval!.Keys).Distinct().OrderBy(k => k, StringComparer.Ordinal), v.Eval!.Keys);
            foreach (var (key, agg) in v.Eval!)
            {
                var xs = runs.Select(r => r.Eval![key]).ToList();
                double mean = xs.Average(), std = Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Count - 1));
                Assert.Equal(mean, agg.Mean, 12);
                Assert.Equal(std, agg.Std, 12);
                Assert.Equal(2, agg.N);
            }
        }
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, AblationRecipe.JsonFile)));
        var first = json.RootElement.GetProperty("variants")[0].GetProperty("eval");
        Assert.Equal(report.Variants[0].Eval!["heldout.exact"].Mean, first.GetProperty("heldout.exact").GetProperty("mean").GetDouble(), 12);
        Assert.True(json.RootElement.GetProperty("runs")[0].GetProperty("eval").TryGetProperty("ifeval.prompt_strict", out _));
        var html = File.ReadAllText(Path.Combine(outDir, AblationRecipe.HtmlFile));
        Assert.Contains("Evaluation", html);
        Assert.Contains("heldout.exact", html);

        // A held-out set that does not exist is refused before anything trains.
        var missing = Path.Combine(dir, "out2");
        var e = Assert.Throws<InstructTune.Training.Config.ConfigException>(() => AblationRecipe.Run(cfg, ["eval.heldout=[/nonexistent/heldout.jsonl]"],
            AblationVariants.Parse("baseline"), 1, missing));
        Assert.Contains("eval.heldout", e.Message);
        Assert.False(Directory.Exists(missing));
    }

    [Fact]
    public void TheCotVariantTrainsOnGsm8kSocraticRationalesAndIsScoredByAnswerExtraction()
    {
        var (modelDir, _) = RecipeSetupTests.Workspace();
        // The workspace's tokenizer with a longer context: GSM8K rationales run to a few hundred byte-level tokens.
        InstructTune.Models.RandomCheckpoint.Create(new InstructTune.Models.LlamaConfig { VocabSize = 280, HiddenSize = 16, IntermediateSize = 32,
            NumHiddenLayers = 1, NumAttentionHeads = 2, NumKeyValueHeads = 2, MaxPositionEmbeddings = 512 }, modelDir, 1, InstructTune.Checkpoints.DType.F32);
        var dir = Directory.CreateTempSubdirectory("ablate-cot").FullName;
        var records = File.ReadLines(TestPaths.SharedTestData("datasets", "gsm8k", "test_socratic.jsonl")).OrderBy(l => l.Length).Take(11).ToList();
        string train = Path.Combine(dir, "gsm8k_socratic_train.jsonl"), heldout = Path.Combine(dir, "gsm8k_socratic_heldout.jsonl");
        File.WriteAllLines(train, records.Take(8));
        File.WriteAllLines(heldout, records.Skip(8));
        var cfg = Path.Combine(dir, "recipe.yaml");
        File.WriteAllText(cfg, $"""
            model:
              path: {modelDir}
            data:
              path: {train}
              format: gsm8k
              max_seq_len: 512
              template: "{RecipeSetupTests.ShortTemplate.Split('=', 2)[1]}"
            training:
              max_steps: 2
              learning_rate: 0.01
            eval:
              heldout: [{heldout}]
              max_new_tokens: 4
            """);
        var report = AblationRecipe.Run(cfg, [], AblationVariants.Parse("cot"), 1, Path.Combine(dir, "out"));
        var run = report.Runs.Single();
        Assert.True(File.Exists(Path.Combine(run.RunDir, "adapter", "instruction_aware.safetensors")));   // the CoT pathways trained
        var lines = File.ReadLines(Path.Combine(run.RunDir, "eval", "gsm8k_socratic_heldout", "predictions.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        Assert.Equal(3, lines.Count);
        foreach (var l in lines)
        {
            // The reference is the Socratic rationale (sub-question ** step lines) with the final answer after '####',
            // and the prediction is scored by the GSM8K answer extraction.
            var reference = l.GetProperty("reference").GetString()!;
            Assert.Contains(" ** ", reference);
            Assert.Contains("\n#### ", reference);
            var gold = reference[(reference.LastIndexOf("#### ", StringComparison.Ordinal) + 5)..].Trim().Replace(",", "");
            var metrics = l.GetProperty("metrics");
            Assert.Equal(metrics.GetProperty("answer").GetString() == gold ? 1 : 0, metrics.GetProperty("gsm8k").GetInt32());
        }
        foreach (var m in new[] { "gsm8k", "gsm8k_strict", "gsm8k_flexible" })
            Assert.Equal(lines.Average(l => l.GetProperty("metrics").GetProperty(m).GetDouble()), run.Eval![$"gsm8k_socratic_heldout.{m}"], 12);
    }

    [Fact]
    public void TheQuickstartAblationConfigBindsForEveryBuiltInVariant()
    {
        var path = Path.Combine(TestPaths.RepoRoot, "configs", "ablation-quickstart.yaml");
        Assert.StartsWith("# Quickstart-scale ablation", File.ReadAllText(path));
        foreach (var v in AblationVariants.Parse("baseline,segments,gates,segments_gates,temperature_head,biased_attention"))
        {
            var c = InstructTune.Training.Config.ConfigLoader.Load<InstructTune.Training.Config.TrainConfig>(path, [.. v.Overrides]);
            InstructTune.Recipes.FineTuneRecipe.Validate(c);
            Assert.Equal(150, c.Training.MaxSteps);
        }
    }

    [Fact]
    public void UnknownVariantsAndBadOverridesAreRefusedBeforeTraining()
    {
        var e = Assert.Throws<InstructTune.Common.InputException>(() => AblationVariants.Parse("baseline,nope"));
        Assert.Contains("nope", e.Message);
        Assert.Contains("segments_gates", e.Message);
        Assert.Throws<ArgumentException>(() => AblationVariants.Register("Bad Name", "x"));
        AblationVariants.Register("test_text_format", "refused: text data has no segments", "data.format=text", "model.instruction_aware.segment_embeddings=true");
        var (modelDir, data) = RecipeSetupTests.Workspace();
        var outDir = Path.Combine(Directory.CreateTempSubdirectory("ablate").FullName, "out");
        var ce = Assert.Throws<InstructTune.Training.Config.ConfigException>(() =>
            AblationRecipe.Run(ConfigFile(modelDir, data), [], AblationVariants.Parse("baseline,test_text_format"), 1, outDir));
        Assert.Contains("variant test_text_format", ce.Message);
        Assert.Contains("model.instruction_aware", ce.Message);
        Assert.False(Directory.Exists(outDir));                                      // nothing trained, nothing written
    }
}
