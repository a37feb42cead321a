using InstructTune.Evaluation.Metrics;

namespace InstructTune.Tests.Evaluation.Metrics;

/// <summary>Values published by the tools' authors or worked by hand, independent of our golden scripts.</summary>
public class TextMetricsPublishedExampleTests
{
    // sacreBLEU README (github.com/mjpost/sacrebleu, "Using SacreBLEU from Python"):
    // BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18).
    [Fact]
    public void SacreBleuReadmeCorpusExample()
    {
        string[] sys = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];
        IReadOnlyList<string>[] refs =
        [
            ["The dog bit the man.", "The dog had bit the man."],
            ["It was not unexpected.", "No one was surprised."],
            ["The man bit him first.", "The man had bitten the dog."],
        ];
        var s = Bleu.Corpus(sys, refs);
        Assert.Equal(48.53, s.Score, 0.005);
        Assert.Equal(17, s.SysLen);
        Assert.Equal(18, s.RefLen);
        Assert.Equal(0.943, s.BrevityPenalty, 0.0005);
        Assert.Equal([82.4, 50.0, 45.5, 37.5], s.Precisions.Select(p => Math.Round(p, 1)).ToArray());
    }

    // naist-nlp/mbrs, mbrs/metrics/bleu_test.py: sacreBLEU sentence scores with effective order (3 decimals).
    [Theory]
    [InlineData("this is a test", "this is a test", 100.0)]
    [InlineData("another test", "this is a test", 18.394)]
    [InlineData("this is a fest", "this is a test", 59.460)]
    [InlineData("Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;",
        "producţia de zahăr brut se exprimă în zahăr alb;", 8.493)]
    [InlineData("another test", "ref", 0.0)]
    public void MbrsSentenceBleuExamples(string hyp, string reference, double expected) =>
        Assert.Equal(expected, Bleu.Sentence(hyp, [reference]).Score, 0.0006);

    // Hand-worked: "another test" vs "this is a test": 1/2 unigrams match, 0/1 bigrams (exp smoothing 1/(2·1)),
    // effective order 2, BP = exp(1 − 4/2): BLEU = e^{-1} · sqrt(50 · 50) = 18.394.
    [Fact]
    public void HandWorkedSmoothedSentenceBleu() =>
        Assert.Equal(Math.Exp(-1) * 50, Bleu.Sentence("another test", ["this is a test"]).Score, 1e-9);

    // rouge_score README (google-research/google-research/rouge): rouge1 P=0.75 R=0.6667 F=0.70588;
    // rougeL P=0.625 R=0.5556 F=0.58824 for this pair.
    [Fact]
    public void RougeScoreReadmeExample()
    {
        var s = Rouge.Score("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log.");
        Assert.Equal(0.75, s.Rouge1.Precision, 1e-12);
        Assert.Equal(6.0 / 9, s.Rouge1.Recall, 1e-12);
        Assert.Equal(0.7058823529411765, s.Rouge1.FMeasure, 1e-12);
        Assert.Equal(0.625, s.RougeL.Precision, 1e-12);
        Assert.Equal(0.5882352941176471, s.RougeL.FMeasure, 1e-12);
    }

    // Lin (2004) §3.2 summary-level LCS example: r = w1 w2 w3 w4 w5, c1 = w1 w2 w6 w7 w8, c2 = w1 w3 w8 w9 w5:
    // union LCS = w1 w2 w3 w5, so LCS∪ = 4, R = 4/5; candidate has 10 tokens, P = 4/10.
    [Fact]
    public void LinSummaryLevelLcsExample()
    {
        var s = Rouge.Score("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5");
        Assert.Equal(0.8, s.RougeLsum.Recall, 1e-12);
        Assert.Equal(0.4, s.RougeLsum.Precision, 1e-12);
    }

    // SQuAD v1.1: articles and punctuation vanish; F1 of "the Denver Broncos" vs "Denver Broncos won" = 0.8.
    [Fact]
    public void SquadHandWorked()
    {
        Assert.Equal("denver broncos", SquadMetrics.Normalize("The  Denver Broncos!"));
        Assert.True(SquadMetrics.ExactMatch("the Denver Broncos.", ["Denver Broncos"]));
        Assert.Equal(0.8, SquadMetrics.F1("the Denver Broncos", ["Denver Broncos won"]), 1e-12);
        Assert.Equal(1.0, SquadMetrics.F1("Broncos", ["Panthers", "broncos"]), 1e-12);
        Assert.Equal(0.0, SquadMetrics.F1("", [""]), 1e-12);
    }

    // Porter (1980) examples, which NLTK's default mode keeps.
    [Theory]
    [InlineData("caresses", "caress")] [InlineData("ponies", "poni")] [InlineData("relational", "relat")]
    [InlineData("hopping", "hop")] [InlineData("filing", "file")] [InlineData("generalizations", "gener")]
    [InlineData("happy", "happi")] [InlineData("enjoy", "enjoy")] [InlineData("dying", "die")]
    public void PorterPaperExamples(string word, string stem) => Assert.Equal(stem, PorterStemmer.Stem(word));
}

/// <summary>
/// rouge_score's own regression tests (google-research/google-research rouge/rouge_scorer_test.py), whose
/// expected values come from manual runs of the official ROUGE-1.5.5 perl script, on its synthetic testdata
/// (copied with attribution to tests/fixtures/eval/rouge_score_testdata.json). Five decimals, as there.
/// </summary>
public class RougeScoreUpstreamTests
{
    private static readonly System.Text.Json.JsonElement Data =
        System.Text.Json.JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("eval", "rouge_score_testdata.json"))).RootElement;

    private static string Target(int i) => Data.GetProperty("targets")[i].GetString()!;
    private static string Prediction(int i) => Data.GetProperty("predictions")[i].GetString()!;

    private static void Near(double expected, double actual) => Assert.Equal(expected, actual, 0.000005);

    [Theory]
    [InlineData(1, false, 0, 0.40741, 0.68750, 0.51163)]
    [InlineData(1, false, 1, 0.40476, 0.65385, 0.50000)]
    [InlineData(1, true, 0, 0.40741, 0.68750, 0.51163)]
    [InlineData(1, true, 1, 0.42857, 0.69231, 0.52941)]
    [InlineData(2, false, 0, 0.30769, 0.53333, 0.39024)]
    [InlineData(2, false, 1, 0.29268, 0.48000, 0.36364)]
    [InlineData(2, true, 0, 0.30769, 0.53333, 0.39024)]
    [InlineData(2, true, 1, 0.29268, 0.48000, 0.36364)]
    public void RougeNAgainstRouge155(int n, bool stem, int i, double r, double p, double f)
    {
        var all = Rouge.Score(Target(i), Prediction(i), stem);
        var s = n == 1 ? all.Rouge1 : all.Rouge2;
        Near(r, s.Recall); Near(p, s.Precision); Near(f, s.FMeasure);
    }

    [Theory]
    [InlineData(0, 0.40741, 0.68750, 0.51163)]
    [InlineData(1, 0.40476, 0.65385, 0.50000)]
    public void RougeLAgainstRouge155(int i, double r, double p, double f)
    {
        var s = Rouge.Score(Target(i), Prediction(i)).RougeL;
        Near(r, s.Recall); Near(p, s.Precision); Near(f, s.FMeasure);
    }

    [Fact]
    public void RougeLsumAgainstRouge155WithStemming()
    {
        var s = Rouge.Score(Data.GetProperty("target_multi").GetString()!, Data.GetProperty("prediction_multi").GetString()!, stem: true).RougeLsum;
        Near(0.36538, s.Recall); Near(0.66667, s.Precision); Near(0.47205, s.FMeasure);
    }

    [Fact]
    public void SmallCasesFromTheUpstreamTests()
    {
        var a = Rouge.Score("testing one two", "testing");
        Assert.Equal((1.0, 1.0 / 3, 0.5), (a.Rouge1.Precision, a.Rouge1.Recall, a.Rouge1.FMeasure));
        var b = Rouge.Score("testing one two", "testing one");
        Assert.Equal(2.0 / 3, b.Rouge2.FMeasure, 1e-12);
        Assert.Equal(0.8, b.RougeL.FMeasure, 1e-12);
        Assert.Equal(0.8, Rouge.Score("testing one two", "testing two").RougeL.FMeasure, 1e-12);
        Assert.Equal(RougeScore.Zero, Rouge.Score("testing one two", "").RougeLsum);
        Assert.Equal(RougeScore.Zero, Rouge.Score("w1 w2 w3 w4 w5", "/").RougeLsum);
        Assert.Equal(RougeScore.Zero, Rouge.Score("", "w1").RougeLsum);
    }
}
