using System.Text.Json.Nodes;

namespace InstructTune.Tests.Evaluation.Run;

/// <summary>
/// `itune eval run --predictions`: instructions that carry constraints (length, count, format, required and forbidden
/// words, case) get a per-example fidelity and a by-kind section; outputs that ignore the constraints score clearly
/// lower than outputs that keep them, with the same references. Also the refusals of --multi-turn.
/// </summary>
[Collection("Console")]
public sealed class EvalRunFidelityTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("itune-evalrun-fid").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly (string Instruction, string Keeps, string Ignores)[] Cases =
    [
        ("Describe the sea in at most 5 words.", "Blue, deep and salty.", "The sea is a vast body of salty water covering most of the planet."),
        ("List 3 fruits as a bullet list.", "- apple\n- pear\n- plum", "Apples, pears and plums are fruits."),
        ("Answer in JSON format: what is two plus two?", "{\"answer\": 4}", "Two plus two is four."),
        ("Write a sentence about dogs and include the keywords loyal and playful.", "Dogs are loyal and playful.", "Dogs are nice."),
        ("Name a colour. Do not use the word red.", "Blue.", "Red."),
        ("Write your greeting in all capital letters.", "HELLO THERE", "hello there"),
    ];

    [Fact]
    public void ConstraintIgnoringOutputsScoreClearlyWorse()
    {
        var data = Path.Combine(_dir, "data.jsonl");
        File.WriteAllLines(data, Cases.Select((c, i) => new JsonObject
        {
            ["id"] = $"q{i}", ["instruction"] = c.Instruction, ["input"] = "", ["output"] = c.Keeps,
        }.ToJsonString()));
        double Fidelity(string name, Func<(string, string Keeps, string Ignores), string> pick)
        {
            var preds = Path.Combine(_dir, name + ".jsonl");
            File.WriteAllLines(preds, Cases.Select((c, i) => new JsonObject { ["id"] = $"q{i}", ["prediction"] = pick(c) }.ToJsonString()));
            var outDir = Path.Combine(_dir, name);
            var (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--data", data, "--format", "alpaca", "--predictions", preds, "--out", outDir);
            Assert.True(rc == 0, err);
            var results = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")))!;
            Assert.Equal(Cases.Length, results["fidelity"]!["examples_with_constraints"]!.GetValue<int>());
            Assert.Contains("Instruction fidelity", File.ReadAllText(Path.Combine(outDir, "report.html")));
            var line = JsonNode.Parse(File.ReadLines(Path.Combine(outDir, "predictions.jsonl")).First())!;
            Assert.NotEmpty(line["metrics"]!["constraints"]!.AsArray());
            return results["metrics"]!["fidelity"]!.GetValue<double>();
        }
        double keeps = Fidelity("keeps", c => c.Keeps), ignores = Fidelity("ignores", c => c.Ignores);
        Assert.Equal(1.0, keeps, 9);
        Assert.True(ignores < 0.3, $"ignoring outputs: fidelity {ignores}");
    }

    [Fact]
    public void MultiTurnNeedsAModelAndConversations()
    {
        var data = Path.Combine(_dir, "single.jsonl");
        File.WriteAllText(data, """{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}""" + "\n");
        var preds = Path.Combine(_dir, "p.jsonl");
        File.WriteAllText(preds, """{"prediction": "hello"}""" + "\n");
        var (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--data", data, "--format", "messages", "--predictions", preds,
            "--multi-turn", "--out", Path.Combine(_dir, "o1"));
        Assert.Equal(2, rc);
        Assert.Contains("--multi-turn needs --model", err);
        Assert.False(Directory.Exists(Path.Combine(_dir, "o1")));
        (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--data", data, "--format", "messages", "--model", ModelBackends.TinyEvalModel.Path,
            "--multi-turn", "--out", Path.Combine(_dir, "o2"));
        Assert.Equal(2, rc);
        Assert.Contains("two or more assistant turns", err);
    }
}
