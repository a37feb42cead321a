using System.Text.Json;
using InstructTune.Evaluation.Metrics;

namespace InstructTune.Tests.Evaluation.Metrics;

/// <summary>
/// The 240-pair corpus of tools/golden/eval_text_metrics.py: sentence BLEU (checked there against nltk
/// sentence_bleu), corpus BLEU, 13a tokens, ROUGE plain and stemmed (Python re-implementation over NLTK stems),
/// SQuAD EM/F1. Tolerances are the acceptance bounds: BLEU 0.01, ROUGE 0.001 (observed differences are ~1e-12).
/// </summary>
public class TextMetricsGoldenTests
{
    private static readonly List<MetricPair> Pairs = PairsReader.Read(TestPaths.Fixtures("eval", "text_metrics_pairs.jsonl"));
    private static readonly Dictionary<string, JsonElement> Expected = File
        .ReadLines(TestPaths.Fixtures("eval", "text_metrics_expected.jsonl"))
        .Select(l => JsonDocument.Parse(l).RootElement)
        .ToDictionary(e => e.GetProperty("id").GetString()!);

    [Fact]
    public void CorpusHasAtLeast200Pairs() => Assert.True(Pairs.Count >= 200, $"{Pairs.Count} pairs");

    [Fact]
    public void Tokenizer13aMatchesGoldenTokens()
    {
        foreach (var p in Pairs)
        {
            var e = Expected[p.Id];
            Assert.True(e.GetProperty("hyp13a").GetString() == Tokenizer13a.Tokenize(PythonText.RStrip(p.Prediction)), p.Id);
            var refs = e.GetProperty("refs13a").EnumerateArray().Select(x => x.GetString()!).ToList();
            Assert.Equal(refs, p.References.Select(r => Tokenizer13a.Tokenize(PythonText.RStrip(r))).ToList());
        }
    }

    [Fact]
    public void SentenceBleuWithin001()
    {
        double worst = 0;
        foreach (var p in Pairs)
        {
            double want = Expected[p.Id].GetProperty("bleu").GetDouble();
            double got = Bleu.Sentence(p.Prediction, p.References).Score;
            worst = Math.Max(worst, Math.Abs(want - got));
            Assert.True(Math.Abs(want - got) < 0.01, $"{p.Id}: BLEU {got} vs golden {want}");
        }
        Assert.True(worst < 1e-9, $"worst BLEU difference {worst}");
    }

    [Fact]
    public void CorpusBleuWithin001()
    {
        var c = Expected["corpus"];
        var got = Bleu.Corpus(Pairs.Select(p => p.Prediction).ToList(), Pairs.Select(p => p.References).ToList());
        Assert.Equal(c.GetProperty("bleu").GetDouble(), got.Score, 1e-9);

        // The subset where nltk's corpus_bleu and sacreBLEU share conventions, checked against nltk itself.
        var ids = c.GetProperty("long_subset_ids").EnumerateArray().Select(x => x.GetString()).ToHashSet();
        var sub = Pairs.Where(p => ids.Contains(p.Id)).ToList();
        var subScore = Bleu.Corpus(sub.Select(p => p.Prediction).ToList(), sub.Select(p => p.References).ToList());
        Assert.Equal(c.GetProperty("long_subset_bleu_nltk").GetDouble(), subScore.Score, 1e-9);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RougeWithin0001(bool stem)
    {
        string suffix = stem ? "_stem" : "";
        double worst = 0;
        foreach (var p in Pairs)
        {
            var e = Expected[p.Id];
            var s = Rouge.ScoreMulti(p.References, p.Prediction, stem);
            Check("rouge1", s.Rouge1.FMeasure);
            Check("rouge2", s.Rouge2.FMeasure);
            Check("rougeL", s.RougeL.FMeasure);
            Check("rougeLsum", s.RougeLsum.FMeasure);

            void Check(string key, double got)
            {
                double want = e.GetProperty(key + suffix).GetDouble();
                worst = Math.Max(worst, Math.Abs(want - got));
                Assert.True(Math.Abs(want - got) < 1e-3, $"{p.Id} {key}{suffix}: {got} vs golden {want}");
            }
        }
        // Same arithmetic in both implementations: anything above rounding noise means a real divergence.
        Assert.True(worst < 1e-9, $"worst ROUGE difference {worst}");
    }

    [Fact]
    public void SquadEmAndF1MatchGolden()
    {
        foreach (var p in Pairs)
        {
            var e = Expected[p.Id];
            Assert.True(e.GetProperty("em").GetBoolean() == SquadMetrics.ExactMatch(p.Prediction, p.References), p.Id);
            Assert.True(Math.Abs(e.GetProperty("f1").GetDouble() - SquadMetrics.F1(p.Prediction, p.References)) < 1e-9, p.Id);
        }
    }

    [Fact]
    public void PorterStemsMatchNltk()
    {
        var lines = File.ReadAllLines(TestPaths.Fixtures("eval", "porter_stems.tsv"));
        Assert.True(lines.Length > 3000);
        var wrong = lines.Select(l => l.Split('\t'))
            .Where(f => PorterStemmer.Stem(f[0]) != f[1])
            .Select(f => $"{f[0]}: nltk {f[1]}, ours {PorterStemmer.Stem(f[0])}").ToList();
        Assert.True(wrong.Count == 0, string.Join("\n", wrong.Take(20)));
    }
}
