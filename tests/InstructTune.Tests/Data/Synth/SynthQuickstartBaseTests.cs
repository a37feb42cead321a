// Issue 18's end-to-end line on the real quickstart base: `itune synth self-instruct --endpoint local:<quickstart base>`
// with configs/synth-quickstart.yaml makes 20 tasks with no network, the funnel adds up, data.jsonl is the data
// pipeline's alpaca format with provenance, and `itune train` trains on it. Slow: the quickstart's base takes minutes
// to pre-train (set ITUNE_QUICKSTART_OUT to an existing `itune quickstart --out DIR` folder to reuse its base).
using System.Text.Json;
using InstructTune.Recipes.Quickstart;
using InstructTune.Tests.Evaluation;
using InstructTune.Tests.Recipes;

namespace InstructTune.Tests.Data.Synth;

[Collection("Console")]
[Trait("Category", "Slow")]
public class SynthQuickstartBaseTests
{
    [Fact]
    public void Self_instruct_on_the_quickstart_base_makes_20_tasks_that_train()
    {
        var dir = Directory.CreateTempSubdirectory("itune-synth-qsbase-").FullName;
        try
        {
            var qs = Environment.GetEnvironmentVariable("ITUNE_QUICKSTART_OUT");
            if (string.IsNullOrEmpty(qs))
            {
                // The base is pre-trained before tuning starts and does not depend on the tuning settings: one tuning
                // step gives the README quickstart's base in a third of its time.
                qs = Path.Combine(dir, "qs");
                QuickstartRecipe.Run(QuickstartOptions.Default with { OutDir = qs, TuneSteps = 1, EvalPerSplit = 2 }, new PlainQuickstartProgress(TextWriter.Null));
            }
            var baseDir = Path.Combine(qs, "base");
            var outDir = Path.Combine(dir, "synth");
            var (rc, stdout, stderr) = CliCapture.Run("synth", "self-instruct", "--config", Path.Combine(TestPaths.RepoRoot, "configs", "synth-quickstart.yaml"),
                "--seeds", TestPaths.SharedTestData("datasets", "self-instruct", "seed_tasks.jsonl"), "--out", outDir, "--endpoint", "local:" + baseDir);
            Assert.True(rc == 0, stderr);
            Assert.Contains("prompt format plain completion", stderr);
            Assert.Contains("context 208 tokens", stderr);
            var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json"))).RootElement;
            var funnel = report.GetProperty("funnel").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
            long Get(string k) => funnel.GetValueOrDefault(k);
            Assert.Equal(20, Get("tasks_kept"));
            long rejectedByFilter = funnel.Where(p => p.Key.StartsWith("rejected_") && p.Key is not ("rejected_no_valid_instances" or "rejected_endpoint_error")).Sum(p => p.Value);
            Assert.Equal(Get("candidates"), Get("instructions_kept") + rejectedByFilter);
            Assert.True(Get("instructions_kept") >= Get("tasks_kept") + Get("rejected_no_valid_instances") + Get("rejected_endpoint_error"));
            Assert.Equal(Get("instances_kept"), Get("refine_accepted") + Get("refine_flagged") + Get("refine_rejected"));
            Assert.Equal(0, report.GetProperty("requests").GetProperty("failed").GetInt64());

            var lines = File.ReadAllLines(Path.Combine(outDir, "data.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(report.GetProperty("accepted").GetInt32(), lines.Count);
            Assert.True(lines.Count > 0);
            Assert.All(lines, l =>
            {
                foreach (var f in new[] { "instruction", "input", "output", "method", "id" }) Assert.Equal(JsonValueKind.String, l.GetProperty(f).ValueKind);
                Assert.False(string.IsNullOrWhiteSpace(l.GetProperty("instruction").GetString()));
                Assert.False(string.IsNullOrWhiteSpace(l.GetProperty("output").GetString()));
                Assert.Equal("self-instruct", l.GetProperty("method").GetString());
                Assert.True(l.GetProperty("round").GetInt32() >= 1);
            });

            var (trc, tout, terr) = PreparePipelineCli.Run("train", $"model.path={baseDir}", $"data.path={Path.Combine(outDir, "data.jsonl")}",
                "data.format=alpaca", "data.max_seq_len=128", "data.validation_fraction=0", "training.method=lora", "training.max_steps=10",
                $"checkpoint.output_dir={Path.Combine(dir, "run")}", "logging.tensor_board=false", "logging.progress=false");
            Assert.True(trc == 0, terr);
            Assert.True(File.Exists(Path.Combine(dir, "run", "adapter", "adapter_model.safetensors")));
        }
        finally { Directory.Delete(dir, true); }
    }
}
