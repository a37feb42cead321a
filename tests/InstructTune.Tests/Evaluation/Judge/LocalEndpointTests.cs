using System.Text.Json.Nodes;
using InstructTune.Evaluation.Judge;
using InstructTune.Evaluation.Robustness;
using InstructTune.Serving;
using InstructTune.Tests.Serving;
using Microsoft.Extensions.AI;

namespace InstructTune.Tests.Evaluation.Judge;

/// <summary>
/// The judge (IRS) and back-translation against <c>local:DIR</c>: the checkpoint is served in this process through
/// <see cref="ChatClients"/> (no network), and what each run records is exactly what that in-process endpoint answers
/// greedily to the same messages (checked with a second, independent local client).
/// </summary>
[Collection("Console")]
public sealed class LocalEndpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("itune-local-endpoint").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task IrsJudgeRunAgainstLocalUsesTheInProcessServer()
    {
        var items = Path.Combine(_dir, "items.jsonl");
        (string Id, string Instruction, string Response)[] rows =
            [("a", "Say hello.", "hello"), ("b", "Name a fruit.", "a stone"), ("c", "Count to three.", "1 2 3")];
        File.WriteAllLines(items, rows.Select(r => new JsonObject { ["id"] = r.Id, ["instruction"] = r.Instruction, ["response"] = r.Response }.ToJsonString()));
        var outDir = Path.Combine(_dir, "judge");
        var (rc, stdout, err) = CliCapture.Run("eval", "judge", "--input", items, "--out", outDir, "--base-url", "local:" + ServeTestModel.Model);
        Assert.True(rc is 0 or 1, err);
        Assert.Contains("3 judgements", stdout);
        Assert.DoesNotContain("connection", err, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("HTTP", err);
        var lines = File.ReadAllLines(Path.Combine(outDir, "judgements.jsonl")).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(3, lines.Count);

        // The same judge prompts through an independent in-process client: each outcome follows from that answer.
        using var client = ChatClients.Create("local:" + ServeTestModel.Model);
        for (int i = 0; i < rows.Length; i++)
        {
            var answer = (await client.GetResponseAsync(
                [new ChatMessage(ChatRole.System, JudgePrompts.IrsSystem), new ChatMessage(ChatRole.User, JudgePrompts.Irs(rows[i].Instruction, rows[i].Response, null))],
                new ChatOptions { Temperature = 0f, MaxOutputTokens = 512 })).Text;
            Assert.False(string.IsNullOrEmpty(answer));
            if (JudgeAnswerParser.ParseScore(answer) is { } score)
            {
                Assert.True(lines[i]["ok"]!.GetValue<bool>());
                Assert.Equal(score, lines[i]["score"]!.GetValue<double>());
                Assert.Equal(answer, lines[i]["raw"]!.GetValue<string>());
            }
            else
            {
                Assert.False(lines[i]["ok"]!.GetValue<bool>());
                Assert.Equal("no 1-10 score in the judge's answer", lines[i]["error"]!.GetValue<string>());
                Assert.Equal(1, lines[i]["attempts"]!.GetValue<int>()); // greedy: asked once
            }
        }
    }

    [Fact]
    public async Task BackTranslationRunAgainstLocalUsesTheInProcessServer()
    {
        var data = Path.Combine(_dir, "data.jsonl");
        (string Instruction, string Input, string Output)[] rows =
            [("Write the word in capital letters.", "water", "WATER"), ("Give the first letter of the word.", "apple", "a"), ("Say the word twice.", "sun", "sun sun")];
        File.WriteAllLines(data, rows.Select((r, i) => new JsonObject { ["id"] = $"e{i}", ["instruction"] = r.Instruction, ["input"] = r.Input, ["output"] = r.Output }.ToJsonString()));
        var outDir = Path.Combine(_dir, "run");
        var endpoint = "local:" + ServeTestModel.Model;
        var (rc, _, err) = CliCapture.Run("eval", "run", "--model", ModelBackends.TinyEvalModel.Path, "--data", data, "--format", "alpaca",
            "--template", "alpaca", "--max-new-tokens", "3", "--robustness", "3", "--paraphrases", "2", "--back-translate", endpoint, "--out", outDir);
        Assert.True(rc == 0, err);
        Assert.Contains("back-translation (French round trip via " + endpoint, err);
        var robustness = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")))!["robustness"]!;
        Assert.Equal(endpoint, robustness["back_translation"]!.GetValue<string>());
        Assert.Contains("Robustness to paraphrase", File.ReadAllText(Path.Combine(outDir, "report.html")));

        // An independent in-process client gives the same round trips; each one that came back is a variant.
        using var client = ChatClients.Create(endpoint);
        var translator = new BackTranslator(client);
        var byId = robustness["by_example"]!.AsArray().ToDictionary(e => e!["id"]!.GetValue<string>(), e => e!["variants"]!.AsArray());
        Assert.Equal(3, byId.Count);
        int found = 0;
        for (int i = 0; i < rows.Length; i++)
        {
            var expected = await translator.RoundTripAsync(rows[i].Instruction);
            var variant = byId[$"e{i}"].FirstOrDefault(v => v!["kind"]!.GetValue<string>() == "back-translation");
            Assert.Equal(expected?.Trim(), variant?["instruction"]!.GetValue<string>());
            if (variant is not null) found++;
            Assert.Equal(3, byId[$"e{i}"].Count(v => v!["kind"]!.GetValue<string>() is not "back-translation"));
        }
        Assert.True(found > 0, "no round trip came back from the local endpoint");
    }
}
