using System.Text.Json;
using System.Text.Json.Nodes;

namespace InstructTune.Tests.Evaluation.MultiTurn;

/// <summary>
/// `itune eval run --multi-turn` on real models: a quickstart-tuned model (pre-trained and LoRA-tuned for a minute)
/// against a random-initialised model of the same shape and tokenizer, on conversations of three of the quickstart's
/// training questions each. The tuned model must score higher on every dimension; both runs use the tuned run's base
/// as the embedder (a fixed yardstick) and write the section into results.json and report.html.
/// </summary>
[Collection("Console")]
[Trait("Category", "Slow")]
public sealed class CoherenceModelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("itune-coherence").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    // Conversation turns as the tuned model saw its prompts: "instruction\nInput: x" then " answer" (the quickstart
    // tunes " " + answer); the format string puts "\nAnswer:" after each user turn and a newline after each answer.
    private const string Template = "{instruction}\\nAnswer:{output}\\n";

    private static void WriteConversations(string trainJsonl, string path, int count)
    {
        var rows = File.ReadLines(trainJsonl).Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(r => r["complexity"]?.GetValue<int>() == 0).ToList();
        var byTask = rows.GroupBy(r => r["task"]!.GetValue<string>()).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => g.ToList()).ToList();
        using var w = new StreamWriter(path);
        for (int i = 0; i < count; i++)
        {
            var messages = new JsonArray();
            for (int j = 0; j < 3; j++)
            {
                var task = byTask[(i + j) % byTask.Count];
                var r = task[i % task.Count];
                messages.Add(new JsonObject { ["role"] = "user", ["content"] = $"{r["instruction"]}\nInput: {r["input"]}" });
                messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = " " + r["output"]!.GetValue<string>() });
            }
            w.WriteLine(new JsonObject { ["id"] = $"c{i}", ["messages"] = messages }.ToJsonString());
        }
    }

    [Fact]
    public void ATunedModelBeatsARandomOneOnEveryDimension()
    {
        var qs = Path.Combine(_dir, "qs");
        var options = Path.Combine(_dir, "options.json");
        File.WriteAllText(options, """
            {"EvalPerSplit": 1, "PretrainSteps": 400, "TuneSteps": 250, "Hidden": 64, "Intermediate": 192, "Heads": 4, "Layers": 2,
             "PretrainBatch": 8, "TuneBatch": 8, "SimplePerFamily": 24, "LoraRank": 16, "LoraAlpha": 32, "PretrainLearningRate": 0.006}
            """);
        var (rc, _, err) = Evaluation.CliCapture.Run("quickstart", "--tiny", "--options", options, "--out", qs, "--seed", "3");
        Assert.True(rc == 0, err);
        var conversations = Path.Combine(_dir, "conversations.jsonl");
        WriteConversations(Path.Combine(qs, "suite", "train.jsonl"), conversations, 14);

        var random = Path.Combine(_dir, "random");
        (rc, _, err) = Evaluation.CliCapture.Run("init", "--config", Path.Combine(qs, "base", "config.json"), "--out", random, "--seed", "5");
        Assert.True(rc == 0, err);
        foreach (var f in Directory.GetFiles(Path.Combine(qs, "base"), "tokenizer*")) File.Copy(f, Path.Combine(random, Path.GetFileName(f)));

        JsonObject Run(string name, params string[] model)
        {
            var outDir = Path.Combine(_dir, name);
            var (code, _, stderr) = Evaluation.CliCapture.Run(["eval", "run", .. model, "--data", conversations, "--format", "messages",
                "--template", Template, "--max-new-tokens", "6", "--multi-turn", "--embed-model", Path.Combine(qs, "base"), "--out", outDir]);
            Assert.True(code == 0, stderr);
            Assert.Contains("Multi-turn coherence", File.ReadAllText(Path.Combine(outDir, "report.html")));
            return JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")))!["multi_turn"]!.AsObject();
        }
        var tuned = Run("tuned", "--model", Path.Combine(qs, "base"), "--adapter", Path.Combine(qs, "adapter"));
        var rand = Run("random", "--model", random);
        Assert.Equal(14, tuned["conversations"]!.GetValue<int>());
        // Relevance is a difference of cosines (a few hundredths for a short reply against a whole conversation);
        // the others are shares and F1s.
        var summary = string.Join("; ", new[] { "relevance", "consistency", "progression", "completion" }
            .Select(d => $"{d}: tuned {tuned[d]!.GetValue<double>():0.000} vs random {rand[d]!.GetValue<double>():0.000}"));
        foreach (var (dim, margin) in new[] { ("relevance", 0.01), ("consistency", 0.05), ("progression", 0.05), ("completion", 0.05) })
        {
            double t = tuned[dim]!.GetValue<double>(), r = rand[dim]!.GetValue<double>();
            Assert.True(t > r + margin, summary);
        }
        // The random model is at chance where chance is defined.
        Assert.InRange(rand["consistency"]!.GetValue<double>(), -0.15, 0.15);
        Assert.InRange(rand["relevance"]!.GetValue<double>(), -0.05, 0.05);
    }
}
