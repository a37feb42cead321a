using System.Text.Json.Nodes;
using InstructTune.Data.Records;
using InstructTune.Evaluation.Metrics;

namespace InstructTune.Evaluation.Robustness;

/// <summary>One phrasing of an instruction and how it was made: original, synonym, polite, question, fronted, framed,
/// synonym+question, back-translation.</summary>
public sealed record RobustnessVariant(string Kind, string Instruction);

/// <summary>One example across its phrasings: the output and token F1 of each, and the spread.</summary>
public sealed record RobustnessExample(string Id, IReadOnlyList<RobustnessVariant> Variants, IReadOnlyList<string> Outputs,
    IReadOnlyList<double> Scores, double Mean, double Std, double WorstDrop);

/// <summary>Robustness over examples: mean score over all phrasings, mean per-example standard deviation, mean and
/// largest worst-case drop, and the mean score of each kind of phrasing.</summary>
public sealed record ParaphraseRobustnessResult(IReadOnlyList<RobustnessExample> Examples, double Mean, double MeanStd,
    double MeanWorstDrop, double MaxWorstDrop, IReadOnlyDictionary<string, double> ByKind, string? BackTranslation)
{
    public const string Definition =
        "Robustness to paraphrase: each instruction is rephrased (synonym substitution from a table of instruction verbs and " +
        "modifiers; polite, question, fronted-constraint and framed rewrites; and, with an endpoint, back-translation: " +
        "English → pivot language → English through the chat endpoint), the model answers every phrasing with the same " +
        "input and decoding, and each answer gets token F1 (SQuAD) against the references. Per example: the population " +
        "standard deviation of the scores and the worst drop = score of the original phrasing − the lowest score of a " +
        "rephrasing. 0 and 0 mean the wording does not matter; a model that answers only the original wording has a " +
        "drop as large as its score.";

    public JsonObject ToJson()
    {
        static JsonNode? N(double v) => double.IsFinite(v) ? Math.Round(v, 6) : null;
        var byKind = new JsonObject();
        foreach (var (k, v) in ByKind) byKind[k] = N(v);
        return new JsonObject
        {
            ["examples"] = Examples.Count,
            ["phrasings"] = Examples.Sum(e => e.Variants.Count),
            ["mean"] = N(Mean), ["mean_std"] = N(MeanStd), ["mean_worst_drop"] = N(MeanWorstDrop), ["max_worst_drop"] = N(MaxWorstDrop),
            ["by_kind"] = byKind,
            ["back_translation"] = BackTranslation,
            ["definition"] = Definition,
            ["by_example"] = new JsonArray(Examples.Select(e => (JsonNode?)new JsonObject
            {
                ["id"] = e.Id, ["mean"] = N(e.Mean), ["std"] = N(e.Std), ["worst_drop"] = N(e.WorstDrop),
                ["variants"] = new JsonArray(e.Variants.Select((v, i) => (JsonNode?)new JsonObject
                {
                    ["kind"] = v.Kind, ["instruction"] = v.Instruction, ["output"] = e.Outputs[i], ["f1"] = N(e.Scores[i]),
                }).ToArray()),
            }).ToArray()),
        };
    }
}

/// <summary>
/// Robustness of a model to the wording of the user's own instructions (single-turn records with references; see
/// <see cref="ParaphraseRobustnessResult.Definition"/>). Every phrasing of every example is answered in one call of
/// the generator (records in, outputs out), so a model generates them in batches.
/// </summary>
public static class ParaphraseRobustness
{
    /// <summary>The original first, then up to <paramref name="count"/> distinct rewrites (seeded), then the
    /// back-translation when there is one.</summary>
    public static List<RobustnessVariant> Variants(string instruction, int count, int seed, string? backTranslated = null)
    {
        var core = instruction.Trim();
        var rng = new Random(seed);
        var synonym = ParaphraseGenerator.Substitute(core, rng);
        var candidates = new List<RobustnessVariant>
        {
            new("synonym", synonym), new("question", ParaphraseGenerator.Question(core)), new("fronted", ParaphraseGenerator.Fronted(core)),
            new("polite", ParaphraseGenerator.Polite(core)), new("framed", ParaphraseGenerator.Framed(core)),
            new("synonym+question", ParaphraseGenerator.Question(synonym)),
        };
        var seen = new HashSet<string>(StringComparer.Ordinal) { core };
        var variants = new List<RobustnessVariant> { new("original", core) };
        foreach (var c in candidates)
        {
            if (variants.Count > count) break;
            if (c.Instruction.Length > 0 && seen.Add(c.Instruction)) variants.Add(c);
        }
        if (backTranslated is { Length: > 0 } bt && seen.Add(bt.Trim())) variants.Add(new RobustnessVariant("back-translation", bt.Trim()));
        return variants;
    }

    public static ParaphraseRobustnessResult Evaluate(IReadOnlyList<(string Id, InstructionRecord Record, IReadOnlyList<string> References)> examples,
        Func<IReadOnlyList<InstructionRecord>, IReadOnlyList<string>> generate, int paraphrases, int seed,
        IReadOnlyDictionary<string, string>? backTranslations = null, string? backTranslationEndpoint = null)
    {
        var variants = examples.Select(e => Variants(e.Record.Instruction, paraphrases, seed,
            backTranslations is not null && backTranslations.TryGetValue(e.Id, out var bt) ? bt : null)).ToList();
        var records = examples.SelectMany((e, i) => variants[i].Select(v => e.Record with { Instruction = v.Instruction })).ToList();
        var outputs = generate(records);
        if (outputs.Count != records.Count) throw new InvalidOperationException($"{outputs.Count} outputs for {records.Count} phrasings");
        var rows = new List<RobustnessExample>();
        int k = 0;
        for (int i = 0; i < examples.Count; i++)
        {
            var outs = outputs.Skip(k).Take(variants[i].Count).Select(o => o.Trim()).ToList();
            k += variants[i].Count;
            var scores = outs.Select(o => SquadMetrics.F1(o, examples[i].References)).ToList();
            var spread = RobustnessEvaluator.Summarise(examples[i].Id, scores);
            double drop = scores.Count > 1 ? scores[0] - scores.Skip(1).Min() : 0;
            rows.Add(new RobustnessExample(examples[i].Id, variants[i], outs, scores, spread.Mean, spread.Std, drop));
        }
        var byKind = rows.SelectMany(r => r.Variants.Select((v, j) => (v.Kind, Score: r.Scores[j])))
            .GroupBy(x => x.Kind).OrderBy(g => g.Key == "original" ? "" : g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Average(x => x.Score));
        double Avg(Func<RobustnessExample, double> f) => rows.Count == 0 ? double.NaN : rows.Average(f);
        return new ParaphraseRobustnessResult(rows, rows.Count == 0 ? double.NaN : rows.SelectMany(r => r.Scores).Average(),
            Avg(r => r.Std), Avg(r => r.WorstDrop), rows.Count == 0 ? double.NaN : rows.Max(r => r.WorstDrop), byKind, backTranslationEndpoint);
    }
}
