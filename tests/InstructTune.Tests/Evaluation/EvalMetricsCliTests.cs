using System.Text.Json;
using InstructTune.Cli;

namespace InstructTune.Tests.Evaluation;

[Collection("Console")]
public class EvalMetricsCliTests
{
    private static (int rc, string stdout, string stderr) Run(params string[] args) => CliCapture.Run(args);

    [Fact]
    public void WritesOneLinePerPairThenCorpusLineMatchingGolden()
    {
        var output = Path.Combine(Path.GetTempPath(), $"itune-metrics-{Guid.NewGuid():N}.jsonl");
        try
        {
            var (rc, _, err) = Run("eval", "metrics", "--input", TestPaths.Fixtures("eval", "text_metrics_pairs.jsonl"),
                "--output", output, "--stem");
            Assert.True(rc == 0, err);
            var lines = File.ReadAllLines(output).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            var expected = File.ReadLines(TestPaths.Fixtures("eval", "text_metrics_expected.jsonl"))
                .Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(expected.Count, lines.Count);
            for (int i = 0; i < lines.Count - 1; i++)
            {
                var (got, want) = (lines[i], expected[i]);
                Assert.Equal(want.GetProperty("id").GetString(), got.GetProperty("id").GetString());
                Assert.Equal(want.GetProperty("em").GetBoolean(), got.GetProperty("em").GetBoolean());
                Assert.Equal(want.GetProperty("bleu").GetDouble(), got.GetProperty("bleu").GetDouble(), 0.01);
                foreach (var k in new[] { "rouge1", "rouge2", "rougeL", "rougeLsum" })
                    Assert.Equal(want.GetProperty(k + "_stem").GetDouble(), got.GetProperty(k).GetDouble(), 0.001);
            }
            var corpus = lines[^1];
            Assert.Equal("corpus", corpus.GetProperty("id").GetString());
            Assert.Equal(expected[^1].GetProperty("bleu").GetDouble(), corpus.GetProperty("bleu").GetDouble(), 0.01);
            Assert.Equal(expected[^1].GetProperty("f1").GetDouble(), corpus.GetProperty("f1").GetDouble(), 1e-9);
        }
        finally { File.Delete(output); }
    }

    [Fact]
    public void BadLinesAreReportedByLineAndField()
    {
        var input = Path.Combine(Path.GetTempPath(), $"itune-bad-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(input,
        [
            """{"id": "a", "prediction": "x", "references": ["x"]}""",
            """{"id": "b", "prediction": 3, "references": ["x"]}""",
            """{"id": "c", "prediction": "x", "references": "x"}""",
            """not json""",
            """{"id": "a", "prediction": "x", "references": ["x"]}""",
        ]);
        try
        {
            var (rc, _, err) = Run("eval", "metrics", "--input", input);
            Assert.Equal(2, rc);
            Assert.Contains(":2: prediction", err);
            Assert.Contains(":3: references", err);
            Assert.Contains(":4:", err);
            Assert.Contains(":5: id: duplicate", err);
            Assert.DoesNotContain(":1:", err);
        }
        finally { File.Delete(input); }
    }
}

[Collection("Console")]
public class EvalGroupCliTests
{
    [Fact]
    public void EvalGroupHasMetricsAndIfeval()
    {
        var eval = Assert.Single(CliApp.BuildRoot().Subcommands, c => c.Name == "eval");
        Assert.Contains(eval.Subcommands, c => c.Name == "metrics");
        Assert.Contains(eval.Subcommands, c => c.Name == "ifeval");
    }
}
