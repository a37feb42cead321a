using System.Text.Json;
using InstructTune.Evaluation.Run;

namespace InstructTune.Tests.Evaluation.Run;

/// <summary>
/// `itune eval run --predictions` against tools/golden/eval_run_golden.py: EM, F1, ROUGE-1/2/L/Lsum and BLEU of every
/// example equal the official formulas (SQuAD v1.1, rouge_score, sacreBLEU as checked against nltk), and the GSM8K
/// answers equal openai/grade-school-math's rule and lm-evaluation-harness's strict / flexible filters, example by example.
/// </summary>
[Collection("Console")]
public sealed class EvalRunGoldenTests : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), "itune-evalrun-" + Guid.NewGuid().ToString("N"));
    public void Dispose() { if (Directory.Exists(_out)) Directory.Delete(_out, recursive: true); }

    private static Dictionary<string, JsonElement> Expected() =>
        File.ReadLines(TestPaths.Fixtures("eval", "run", "expected.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .ToDictionary(e => e.GetProperty("id").GetString()!);

    private static List<JsonElement> Predictions(string dir) =>
        File.ReadLines(Path.Combine(dir, EvalRunRecipe.PredictionsFile)).Select(l => JsonDocument.Parse(l).RootElement).ToList();

    private static double Num(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.True => 1, JsonValueKind.False => 0, _ => e.GetDouble(),
    };

    [Theory]
    [InlineData("heldout", "alpaca", 238)]
    [InlineData("gsm8k", "gsm8k", 29)]
    public void EveryExampleEqualsTheOfficialScripts(string name, string format, int count)
    {
        var (rc, stdout, stderr) = Evaluation.CliCapture.Run("eval", "run", "--data", TestPaths.Fixtures("eval", "run", name + ".jsonl"),
            "--format", format, "--predictions", TestPaths.Fixtures("eval", "run", name + "_predictions.jsonl"), "--out", _out);
        Assert.True(rc == 0, stderr);
        Assert.Contains("report.html", stdout);
        var expected = Expected();
        var lines = Predictions(_out);
        Assert.Equal(count, lines.Count);
        foreach (var line in lines)
        {
            var id = line.GetProperty("id").GetString()!;
            var want = expected[id];
            var m = line.GetProperty("metrics");
            Assert.True(Num(want.GetProperty("em")) == Num(m.GetProperty("em")), $"{id}: em");
            foreach (var k in new[] { "f1", "rouge1", "rouge2", "rougeL", "rougeLsum" })
                Assert.True(Math.Abs(Num(want.GetProperty(k)) - Num(m.GetProperty(k))) < 1e-9, $"{id}: {k} {Num(want.GetProperty(k))} vs {Num(m.GetProperty(k))}");
            Assert.True(Math.Abs(Num(want.GetProperty("bleu")) - Num(m.GetProperty("bleu"))) < 1e-6, $"{id}: bleu");
            if (want.TryGetProperty("answer", out var answer))
            {
                Assert.Equal(answer.GetString(), m.GetProperty("answer").GetString());
                foreach (var k in new[] { "gsm8k", "gsm8k_strict", "gsm8k_flexible" })
                    Assert.True(Num(want.GetProperty(k)) == Num(m.GetProperty(k)), $"{id}: {k}");
            }
            else Assert.False(m.TryGetProperty("gsm8k", out _));
        }
        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(_out, "results.json")));
        Assert.Equal(Num(expected["corpus:" + name].GetProperty("bleu")), results.RootElement.GetProperty("corpus_bleu").GetDouble(), 6);
        Assert.Equal(lines.Average(l => Num(l.GetProperty("metrics").GetProperty("f1"))),
            results.RootElement.GetProperty("metrics").GetProperty("f1").GetDouble(), 9);
        Assert.Contains("<table", File.ReadAllText(Path.Combine(_out, "report.html")));
    }

    [Fact]
    public void MissingPredictionAndForeignFolderAreRefusedWithExitCode2()
    {
        var data = TestPaths.Fixtures("eval", "run", "gsm8k.jsonl");
        var partial = Path.Combine(_out + "-p.jsonl");
        Directory.CreateDirectory(_out);
        File.WriteAllLines(partial, File.ReadLines(TestPaths.Fixtures("eval", "run", "gsm8k_predictions.jsonl")).Skip(1));
        try
        {
            var (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--data", data, "--predictions", partial, "--out", _out);
            Assert.Equal(2, rc);
            Assert.Contains("no prediction for 1 example", err);

            // A finished run, then the same folder with another data file: refused, nothing overwritten.
            (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--data", data, "--predictions",
                TestPaths.Fixtures("eval", "run", "gsm8k_predictions.jsonl"), "--out", _out);
            Assert.True(rc == 0, err);
            var before = File.ReadAllText(Path.Combine(_out, EvalRunRecipe.PredictionsFile));
            (rc, _, err) = Evaluation.CliCapture.Run("eval", "run", "--data", TestPaths.Fixtures("eval", "run", "heldout.jsonl"), "--format", "alpaca",
                "--predictions", TestPaths.Fixtures("eval", "run", "heldout_predictions.jsonl"), "--out", _out);
            Assert.Equal(2, rc);
            Assert.Contains("holds a run with data", err);
            Assert.Equal(before, File.ReadAllText(Path.Combine(_out, EvalRunRecipe.PredictionsFile)));
        }
        finally { File.Delete(partial); }
    }

    [Fact]
    public void LimitSpreadsTheSampleOverTheWholeFileAndIsSeeded()
    {
        var all = Enumerable.Range(0, 100).Select(i => new EvalExample(i.ToString(), new global::InstructTune.Data.Records.InstructionRecord("q", "", "a", "t"), ["a"])).ToList();
        var a = EvalData.Sample(all, 10, seed: 1);
        var b = EvalData.Sample(all, 10, seed: 1);
        var c = EvalData.Sample(all, 10, seed: 2);
        Assert.Equal(a.Select(e => e.Id), b.Select(e => e.Id));
        Assert.NotEqual(a.Select(e => e.Id), c.Select(e => e.Id));
        for (int i = 0; i < 10; i++) Assert.InRange(int.Parse(a[i].Id), i * 10, i * 10 + 9);
    }
}
