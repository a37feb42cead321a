// The synth commands as a user reaches them: evol-instruct, refine and review through the CLI against the scripted
// server, and configs/synth.yaml loading under the strict schema.
using System.Text.Json;
using InstructTune.Tests.Evaluation;
using InstructTune.Tests.Evaluation.Judge;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Data.Synth;

[Collection("Console")]
public class SynthCliTests
{
    [Fact]
    public void Evol_refine_and_review_run_from_the_command_line()
    {
        // Evolutions append a requirement; responses are long enough; judges say "Different", score 5 (flag), no contradiction.
        using var server = new FakeOpenAiServer
        {
            Script = p =>
                p.StartsWith("You rewrite instructions") ? new ScriptedReply(p[(p.LastIndexOf("Instruction:\n") + 13)..].Trim() + " Answer in two sentences.")
                : p.StartsWith("Compare the two instructions") ? new ScriptedReply("Different")
                : p.Contains("Score the response from 1 to 10") ? new ScriptedReply("{\"score\": 5}")
                : p.StartsWith("Read the instruction and the response below") ? new ScriptedReply("No")
                : new ScriptedReply("Rainbows form when sunlight is refracted, reflected and dispersed in water droplets."),
        };
        var dir = Directory.CreateTempSubdirectory("itune-synth-cli-").FullName;
        try
        {
            var data = Path.Combine(dir, "in.jsonl");
            File.WriteAllLines(data, ["{\"id\": \"a\", \"instruction\": \"Explain how rainbows form.\"}", "{\"id\": \"b\", \"instruction\": \"Why is the sky blue?\"}"]);
            var evolDir = Path.Combine(dir, "evol");
            var (rc, stdout, stderr) = CliCapture.Run("synth", "evol-instruct", "--data", data, "--out", evolDir, "--rounds", "2",
                "--endpoint", server.BaseUrl, "--model", "m", "synth.api_key_env=", "synth.evol_operations=[deepening]");
            Assert.True(rc == 0, stderr);
            Assert.Contains("evol-instruct: 4 evolved, 0 eliminated; 0 accepted, 4 flagged", stdout);
            var flagged = File.ReadAllLines(Path.Combine(evolDir, "review.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(["a", "b", "a", "b"], flagged.Select(f => f.GetProperty("root_id").GetString()));
            Assert.All(flagged, f => Assert.Equal("alignment", f.GetProperty("reasons")[0].GetString()));
            var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(evolDir, "report.json"))).RootElement;
            Assert.Equal(2, report.GetProperty("topic_coverage").GetArrayLength());

            (rc, stdout, stderr) = CliCapture.Run("synth", "review", "--run", evolDir, "--all", "accept");
            Assert.True(rc == 0, stderr);
            Assert.Contains("4 accepted", stdout);
            Assert.Equal(4, File.ReadAllLines(Path.Combine(evolDir, "data.jsonl")).Length);

            var refineDir = Path.Combine(dir, "refine");
            (rc, stdout, stderr) = CliCapture.Run("synth", "refine", "--data", Path.Combine(evolDir, "data.jsonl"), "--out", refineDir,
                "--endpoint", server.BaseUrl, "--model", "m", "synth.api_key_env=", "synth.flag_alignment=4");
            Assert.True(rc == 0, stderr);
            Assert.Contains("refine: 4 accepted, 0 flagged for review, 0 rejected", stdout);

            (rc, _, stderr) = CliCapture.Run("synth", "refine", "--data", Path.Combine(dir, "missing.jsonl"), "--out", refineDir, "--endpoint", server.BaseUrl);
            Assert.Equal(2, rc);
            Assert.Contains("missing.jsonl: file not found", stderr);
            (rc, _, stderr) = CliCapture.Run("synth", "refine", "--data", data, "--out", refineDir, "--endpoint", server.BaseUrl, "synth.flag_alignment=11");
            Assert.Equal(2, rc);
            Assert.Contains("synth.flag_alignment", stderr);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void The_example_config_loads_under_the_strict_schema()
    {
        var cfg = ConfigLoader.Load<TrainConfig>(Path.Combine(TestPaths.RepoRoot, "configs", "synth.yaml"));
        Assert.Equal(0.7, cfg.Synth.RougeThreshold);
        Assert.Equal(6, cfg.Synth.EvolOperations.Count);
        Assert.Throws<ConfigException>(() => ConfigLoader.LoadFromString<TrainConfig>("synth:\n  rouge_treshold: 0.5\n"));
    }
}
