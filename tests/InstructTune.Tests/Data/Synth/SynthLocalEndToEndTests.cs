// End to end with no network: `itune synth self-instruct --endpoint local:<tiny checkpoint>` (the in-process served
// model), its funnel counts adding up, the output in the data pipeline's format, and that output training with
// `itune train`. A random tiny model writes nonsense, so this checks the plumbing, not quality.
using System.Text.Json;
using InstructTune.Tests.Evaluation;
using InstructTune.Tests.Recipes;
using InstructTune.Tests.Serving;

namespace InstructTune.Tests.Data.Synth;

[Collection("Console")]
public class SynthLocalEndToEndTests
{
    [Fact]
    public void Self_instruct_runs_against_a_local_model_and_its_output_trains()
    {
        var model = ServeTestModel.Model;
        var dir = Directory.CreateTempSubdirectory("itune-synth-local-").FullName;
        try
        {
            var outDir = Path.Combine(dir, "synth");
            var (rc, stdout, stderr) = CliCapture.Run("synth", "self-instruct", "--seeds", TestPaths.SharedTestData("datasets", "self-instruct", "seed_tasks.jsonl"),
                "--out", outDir, "--endpoint", "local:" + model, "--target", "20", "synth.max_rounds=3", "synth.max_tokens=40",
                "synth.lenient_instances=true", "synth.drop_truncated=false", "synth.temperature=1", "synth.top_p=1",
                "synth.embeddings=endpoint", "synth.check_contradiction=false", "synth.reject_alignment=0", "synth.flag_alignment=0");
            Assert.True(rc == 0, stderr);
            Assert.Contains("self-instruct:", stdout);
            Assert.Contains("self-instruct round 1", stderr);
            var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json"))).RootElement;
            var funnel = report.GetProperty("funnel").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
            long Get(string k) => funnel.GetValueOrDefault(k);
            // Every candidate is kept or rejected by exactly one instruction filter; every kept instruction becomes a
            // task or is rejected for its instances; the 4-request rounds ran until the target or synth.max_rounds.
            long rejectedByFilter = funnel.Where(p => p.Key.StartsWith("rejected_") && p.Key is not ("rejected_no_valid_instances" or "rejected_endpoint_error")).Sum(p => p.Value);
            Assert.Equal(Get("candidates"), Get("instructions_kept") + rejectedByFilter);
            Assert.Equal(Get("instructions_kept"), Get("tasks_kept") + Get("rejected_no_valid_instances") + Get("rejected_endpoint_error"));
            Assert.True(Get("requests") is 4 or 8 or 12);
            Assert.True(Get("tasks_kept") == 20 || Get("requests") == 12);
            Assert.True(report.GetProperty("requests").GetProperty("completion_tokens").GetInt64() > 0);

            var lines = File.ReadAllLines(Path.Combine(outDir, "data.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(report.GetProperty("accepted").GetInt32(), lines.Count);
            Assert.True(lines.Count > 0, report.GetProperty("funnel").GetRawText());
            Assert.All(lines, l =>
            {
                Assert.False(string.IsNullOrWhiteSpace(l.GetProperty("instruction").GetString()));
                Assert.False(string.IsNullOrWhiteSpace(l.GetProperty("output").GetString()));
                Assert.Equal("self-instruct", l.GetProperty("method").GetString());
                Assert.True(l.GetProperty("scores").TryGetProperty("coherence", out _));
            });

            var (trc, _, terr) = PreparePipelineCli.Run("train", $"model.path={model}", $"data.path={Path.Combine(outDir, "data.jsonl")}",
                "data.format=alpaca", "data.max_seq_len=128", "data.validation_fraction=0", $"checkpoint.output_dir={Path.Combine(dir, "run")}",
                "training.max_steps=1", "logging.tensor_board=false", "logging.progress=false");
            Assert.True(trc == 0, terr);
        }
        finally { Directory.Delete(dir, true); }
    }
}
