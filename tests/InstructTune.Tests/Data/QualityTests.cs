using InstructTune.Data.Quality;
using InstructTune.Data.Records;

namespace InstructTune.Tests.Data;

public class QualityTests
{
    private static InstructionRecord R(string instruction, string input, string output, string task = "t", int complexity = 0) =>
        new(instruction, input, output, task, Complexity: complexity);

    [Fact]
    public void RougeLMatchesLinsWorkedExamples()
    {
        // Lin (2004), section 3.1: S1 "police killed the gunman"; S2 scores 3/4, S3 scores 1/2.
        Assert.Equal(0.75, RougeL.FMeasure("police kill the gunman", "police killed the gunman"), 12);
        Assert.Equal(0.5, RougeL.FMeasure("the gunman kill police", "police killed the gunman"), 12);
        // LCS("the cat sat on the mat", "the cat lay on a mat") = the cat on mat → P = R = 4/6.
        Assert.Equal(4.0 / 6, RougeL.FMeasure("The cat sat on the mat.", "the cat lay on a mat"), 12);
        Assert.Equal(0, RougeL.FMeasure("", "x"));
    }

    [Fact]
    public void ExactDedupUsesNormalisedInstructionAndInput()
    {
        var f = new QualityFilter(new QualityOptions());
        var kept = f.Apply([R("Translate:", "Hello world", "a"), R("  translate  ", "hello, WORLD!", "b"), R("Translate:", "Hello there", "c")]).ToList();
        Assert.Equal(["a", "c"], kept.Select(k => k.Output));
        Assert.Equal(1, f.DuplicatesRemoved);
        Assert.Equal(1, f.Report["t"].Rejected[QualityFilter.ExactDuplicate]);
    }

    [Fact]
    public void MinHashEstimatesJaccardAndLshFindsNearDuplicates()
    {
        var lsh = new MinHashLsh(threshold: 0.7, bands: 32, rows: 4);
        var rng = new Random(3);
        var words = Enumerable.Range(0, 300).Select(i => "w" + i).ToArray();
        var baseText = Enumerable.Range(0, 200).Select(_ => words[rng.Next(words.Length)]).ToList();
        foreach (var changes in new[] { 2, 10, 40, 120 })
        {
            var other = baseText.ToList();
            for (int i = 0; i < changes; i++) other[rng.Next(other.Count)] = "x" + rng.Next(1000);
            string a = string.Join(" ", baseText), b = string.Join(" ", other);
            double exact = lsh.ExactJaccard(a, b);
            double estimate = MinHashLsh.EstimateJaccard(lsh.Signature(a), lsh.Signature(b));
            Assert.True(Math.Abs(exact - estimate) < 0.15, $"changes {changes}: exact {exact}, estimate {estimate}");
        }
        var filter = new QualityFilter(new QualityOptions(ExactDedup: false, NearDupJaccard: 0.7));
        var text = string.Join(" ", baseText);
        var near = text.Replace(baseText[100], "changed");
        var unrelated = string.Join(" ", Enumerable.Range(0, 200).Select(_ => words[rng.Next(words.Length)]));
        var kept = filter.Apply([R(text, "", "o"), R(near, "", "o"), R(unrelated, "", "o")]).ToList();
        Assert.Equal(2, kept.Count);
        Assert.Equal(1, filter.Report["t"].Rejected[QualityFilter.NearDuplicate]);
    }

    [Fact]
    public void RougeLPoolDropsGeneratedInstructionsTooCloseToOnesKept()
    {
        var f = new QualityFilter(new QualityOptions(ExactDedup: false, RougeLMax: 0.7));
        var kept = f.Apply([
            R("Write a poem about the sea", "", "o"),
            R("Write a short poem about the sea", "", "o"),   // LCS 6/7 vs 6/6 → F ≈ 0.92: dropped
            R("List three prime numbers", "", "o"),
        ]).ToList();
        Assert.Equal(2, kept.Count);
        Assert.Equal(1, f.Report["t"].Rejected[QualityFilter.RougeLSimilar]);
    }

    [Fact]
    public void RulesFlagRejectAndReportPerTask()
    {
        var queue = new StringWriter();
        var rules = new[]
        {
            QualityRule.JsonWhenAsked(),
            QualityRule.MaxComplexity(1),
            QualityRule.OutputLength(1, 100),
            QualityRule.LengthRatio(0.0, 10),
            QualityRule.Below("lexical_overlap", 0.5),
        };
        var f = new QualityFilter(new QualityOptions(ExactDedup: false), [new LexicalOverlapScorer()], rules, queue);
        var kept = f.Apply([
            R("Give the name as JSON", "Ann", "{\"name\": \"Ann\"}", "json"),                  // overlap: json words name, ann in prompt → kept
            R("Give the name as JSON", "Bob", "name: Bob", "json"),                          // not JSON → rejected
            R("Give the name as JSON", "Cy", "```json\n{\"name\": \"Cy\"}\n```", "json"),     // fenced JSON → kept (json, name, cy in prompt)
            R("Repeat the word", "echo", "echo", "rep", complexity: 2),                      // too complex → rejected
            R("Repeat the word", "echo", "something else entirely", "rep"),                  // overlap 0 → flagged
            R("Repeat", "x", new string('y', 50), "rep"),                                    // ratio 50/8 > … fine; length ok; overlap 0 → flagged
            R("Hi", "", new string('z', 200), "rep"),                                        // too long → rejected
        ]).ToList();
        Assert.Equal(2, kept.Count);
        Assert.Equal(1, f.Report["json"].Rejected["json_format"]);
        Assert.Equal(2, f.Report["json"].Kept);
        Assert.Equal(1, f.Report["rep"].Rejected["complexity>1"]);
        Assert.Equal(1, f.Report["rep"].Rejected["output_length"]);
        Assert.Equal(2, f.Report["rep"].Flagged["lexical_overlap<0.5"]);
        var lines = queue.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Contains("\"lexical_overlap\":0", lines[0]);
    }
}
