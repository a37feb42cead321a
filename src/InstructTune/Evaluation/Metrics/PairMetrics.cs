using System.Text.Json.Serialization;

namespace InstructTune.Evaluation.Metrics;

/// <summary>One prediction with its references, as read from a pairs JSONL line.</summary>
public sealed record MetricPair(string Id, string Prediction, IReadOnlyList<string> References);

/// <summary>The per-pair line of <c>itune eval metrics</c>: EM, F1, ROUGE F-measures in 0–1, sentence BLEU 0–100.</summary>
public sealed record PairScores(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("em")] bool Em,
    [property: JsonPropertyName("f1")] double F1,
    [property: JsonPropertyName("rouge1")] double Rouge1,
    [property: JsonPropertyName("rouge2")] double Rouge2,
    [property: JsonPropertyName("rougeL")] double RougeL,
    [property: JsonPropertyName("rougeLsum")] double RougeLsum,
    [property: JsonPropertyName("bleu")] double Bleu);

/// <summary>The final line: corpus BLEU and the means of the per-pair metrics.</summary>
public sealed record CorpusScores(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("bleu")] double Bleu,
    [property: JsonPropertyName("em")] double Em,
    [property: JsonPropertyName("f1")] double F1,
    [property: JsonPropertyName("rouge1")] double Rouge1,
    [property: JsonPropertyName("rouge2")] double Rouge2,
    [property: JsonPropertyName("rougeL")] double RougeL,
    [property: JsonPropertyName("rougeLsum")] double RougeLsum,
    [property: JsonPropertyName("count")] int Count);

/// <summary>All text metrics of a set of pairs: what <c>itune eval metrics</c> prints.</summary>
public static class PairMetrics
{
    public static PairScores Score(MetricPair pair, bool stem)
    {
        var rouge = Rouge.ScoreMulti(pair.References, pair.Prediction, stem);
        return new PairScores(pair.Id, SquadMetrics.ExactMatch(pair.Prediction, pair.References),
            SquadMetrics.F1(pair.Prediction, pair.References), rouge.Rouge1.FMeasure, rouge.Rouge2.FMeasure,
            rouge.RougeL.FMeasure, rouge.RougeLsum.FMeasure, Bleu.Sentence(pair.Prediction, pair.References).Score);
    }

    public static CorpusScores Corpus(IReadOnlyList<MetricPair> pairs, IReadOnlyList<PairScores> scores)
    {
        var bleu = Bleu.Corpus(pairs.Select(p => p.Prediction).ToList(), pairs.Select(p => p.References).ToList());
        double Mean(Func<PairScores, double> f) => scores.Count == 0 ? 0 : scores.Average(f);
        return new CorpusScores("corpus", bleu.Score, Mean(s => s.Em ? 1 : 0), Mean(s => s.F1), Mean(s => s.Rouge1),
            Mean(s => s.Rouge2), Mean(s => s.RougeL), Mean(s => s.RougeLsum), scores.Count);
    }
}
