using System.Text.Json;
using InstructTune.Evaluation;
using InstructTune.Evaluation.Generalization;
using InstructTune.Evaluation.Judge;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.MultiTurn;
using InstructTune.Evaluation.Robustness;
using InstructTune.Tests.Reports;

namespace InstructTune.Tests.Evaluation;

/// <summary>A whole evaluation run with a deterministic fake model, written as results.json, summary.md and
/// report.html; the page is opened in headless chromium.</summary>
public class EvaluationReportTests
{
    // Follows instructions when they are short; otherwise rambles. Deterministic.
    private static readonly DelegateTextGenerator Fake = new(p =>
        p.Length < 60 ? "- one\n- two\n- three" : p.Contains("Output:") ? p.Split("Input: ").Last().Split('\n')[0].ToUpperInvariant() : "I think that this is a long answer about many things.");

    public static EvaluationResults Run()
    {
        var items = new List<InstructionItem>
        {
            new("s1", "List 3 colours as a bullet list.", ["- red\n- green\n- blue"]),
            new("c1", "If the text mentions a colour, list 3 colours as a bullet list; otherwise say none.", ["none"]),
            new("m1", "First read the question, then list 3 answers, finally summarise them in at most 10 words.", ["a b c"]),
            new("m2", "Say hello.", ["hello"], new Dictionary<string, string> { ["complexity"] = "multi-step" }),
        };
        var instr = InstructionEvaluator.Evaluate(items, Fake);
        var pairs = PairsReader.Read(TestPaths.Fixtures("eval", "text_metrics_pairs.jsonl")).Take(20).ToList();
        var robustness = RobustnessEvaluator.Evaluate(items.Take(3).Select(i => new RobustnessTask(i.Id,
            ParaphraseGenerator.Generate(i.Instruction, 4, seed: 1), o => o.StartsWith("- ") ? 1 : 0.2)).ToList(), Fake);
        var train = Enumerable.Range(0, 6).Select(i => new TaskExample("up", "Uppercase.", $"w{i}", $"W{i}")).ToList();
        var eval = new List<TaskExample> { new("up", "Uppercase.", "abc", "ABC"), new("rev", "Reverse the word.", "abc", "cba") };
        var gen = GeneralizationEvaluator.Evaluate(train, eval, new HashSet<string> { "rev" }, Fake, (o, g) => o == g ? 1 : 0);
        var multi = MultiTurnEvaluator.Evaluate([new Conversation("c", [new("I am Bo."), new("Who am I?", ["Bo"], ["Al"])], ["Bo"])], Fake);
        var judge = JudgeSummary.From(
            [new Judgement("a", 7, null, "7", null, 1, false), new Judgement("b", null, null, null, "HTTP 500", 3, false)],
            [new Judgement("p", null, PairwiseWinner.A, "A", null, 1, false)]);
        return new EvaluationResults
        {
            Title = "Fake model evaluation",
            TextMetrics = PairMetrics.Corpus(pairs, pairs.Select(p => PairMetrics.Score(p, false)).ToList()),
            PerLevel = InstructionEvaluator.ByLevel(instr),
            Fidelity = InstructionEvaluator.ByConstraintKind(instr),
            Robustness = robustness, Generalization = gen, MultiTurn = multi, Judge = judge,
        };
    }

    [Fact]
    public void WritesJsonMarkdownAndHtml()
    {
        var dir = Directory.CreateTempSubdirectory("itune-eval-");
        try
        {
            var results = Run();
            EvaluationReport.Write(results, dir.FullName);
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.FullName, "results.json")));
            Assert.Equal(4, json.RootElement.GetProperty("PerLevel").GetArrayLength());
            Assert.Equal(4, json.RootElement.GetProperty("Generalization").GetProperty("Shots").GetArrayLength());
            var md = File.ReadAllText(Path.Combine(dir.FullName, "summary.md"));
            foreach (var section in new[] { "## Text metrics", "## By complexity level", "## Instruction fidelity", "## Robustness to rephrasing", "## Generalization", "## Multi-turn coherence", "## LLM judge" })
                Assert.Contains(section, md);
            Assert.Contains("| 3 | 2 | 1 |", md);   // judge: 3 judgements, 2 made, 1 failed
            var html = File.ReadAllText(Path.Combine(dir.FullName, "report.html"));
            Assert.Equal(5, html.Split("<svg").Length - 1); // level bars, fidelity, robustness spread, shot curve, seen vs unseen
            Assert.DoesNotContain("<script", html);
        }
        finally { dir.Delete(true); }
    }

    [ChromiumFact]
    public void EvaluationReportRendersInChromium()
    {
        var dir = Directory.CreateTempSubdirectory("itune-eval-");
        try
        {
            EvaluationReport.Write(Run(), dir.FullName);
            var png = Path.Combine(dir.FullName, "report.png");
            var r = HeadlessChromium.Screenshot(Path.Combine(dir.FullName, "report.html"), png, TimeSpan.FromSeconds(90));
            Assert.True(File.Exists(png), r.Stderr);
            Assert.Equal((1200, 1600), HeadlessChromium.PngSize(png));
            Assert.True(r.ConsoleLines.Count == 0, string.Join('\n', r.ConsoleLines));
            if (Environment.GetEnvironmentVariable("ITUNE_KEEP_REPORT") is { Length: > 0 } keep)
                foreach (var f in Directory.GetFiles(dir.FullName)) File.Copy(f, Path.Combine(keep, Path.GetFileName(f)), true);
        }
        finally { dir.Delete(true); }
    }
}
