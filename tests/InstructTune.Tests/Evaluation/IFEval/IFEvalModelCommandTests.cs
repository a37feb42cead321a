using System.Text.Json;
using InstructTune.Evaluation.IFEval;
using InstructTune.Tests.Evaluation.ModelBackends;

namespace InstructTune.Tests.Evaluation.IFEval;

/// <summary>
/// `itune eval ifeval --model` end to end on a tiny random checkpoint: the responses it writes are in the official
/// format (one {"prompt", "response"} object per line, Python json.dumps spelling, every prompt of the input once),
/// and scoring that file with `itune eval ifeval --responses` gives byte-identical result files; a rerun resumes.
/// </summary>
[Collection("Console")]
public sealed class IFEvalModelCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("itune-ifeval-model").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void GeneratedResponsesScoreTheSameThroughResponsesMode()
    {
        var gen = Path.Combine(_dir, "gen");
        var (rc, stdout, err) = Evaluation.CliCapture.Run("eval", "ifeval", "--model", TinyEvalModel.Path, "--template", "raw",
            "--limit", "6", "--max-new-tokens", "12", "--batch-size", "4", "--out", gen);
        Assert.True(rc == 0, err);
        Assert.Contains("prompt-level", stdout, StringComparison.OrdinalIgnoreCase);
        var input = Path.Combine(gen, IFEvalGeneration.InputFile);
        var responses = Path.Combine(gen, IFEvalGeneration.ResponsesFile);
        var prompts = IFEvalReader.ReadPrompts(input);
        Assert.Equal(6, prompts.Count);
        var lines = File.ReadAllLines(responses);
        Assert.Equal(6, lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            Assert.StartsWith("{\"prompt\": \"", lines[i]);
            Assert.Contains("\", \"response\": \"", lines[i]);
            using var doc = JsonDocument.Parse(lines[i]);
            Assert.Equal(["prompt", "response"], doc.RootElement.EnumerateObject().Select(p => p.Name));
            Assert.Equal(prompts[i].Prompt, doc.RootElement.GetProperty("prompt").GetString());
            Assert.All(lines[i], c => Assert.True(c < 128, "json.dumps writes ASCII escapes"));
        }

        var scored = Path.Combine(_dir, "scored");
        (rc, _, err) = Evaluation.CliCapture.Run("eval", "ifeval", "--input", input, "--responses", responses, "--out", scored);
        Assert.True(rc == 0, err);
        foreach (var f in new[] { IFEvalWriter.StrictFile, IFEvalWriter.LooseFile, IFEvalWriter.SummaryFile })
            Assert.Equal(File.ReadAllText(Path.Combine(gen, f)), File.ReadAllText(Path.Combine(scored, f)));

        // A rerun finds every prompt answered and generates nothing.
        (rc, _, err) = Evaluation.CliCapture.Run("eval", "ifeval", "--model", TinyEvalModel.Path, "--template", "raw",
            "--limit", "6", "--max-new-tokens", "12", "--out", gen);
        Assert.True(rc == 0, err);
        Assert.Contains("resuming: 6 of 6", err);
        Assert.Equal(lines, File.ReadAllLines(responses));
    }

    [Fact]
    public void NeitherOrBothOfModelAndResponsesIsRefused()
    {
        var (rc, _, err) = Evaluation.CliCapture.Run("eval", "ifeval", "--out", _dir);
        Assert.Equal(2, rc);
        Assert.Contains("either --responses", err);
    }
}
