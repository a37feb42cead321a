using System.Text.Json.Nodes;
using InstructTune.Evaluation.Fidelity;
using InstructTune.Evaluation.Metrics;

namespace InstructTune.Evaluation.Run;

/// <summary>
/// The per-example metrics of <c>itune eval run</c>, all from the prediction text and the example:
/// <list type="bullet">
/// <item><c>em</c>, <c>f1</c>: SQuAD v1.1 (normalised exact match, token F1; max over references);</item>
/// <item><c>exact</c>: the prediction equals a reference after trimming surrounding whitespace (case and punctuation
/// count; the quickstart's measure);</item>
/// <item><c>rouge1/2/L/Lsum</c>: rouge_score F-measures; <c>bleu</c>: sacreBLEU sentence BLEU (0–100);</item>
/// <item>when the reference has a GSM8K <c>#### n</c> line: <c>answer</c> (official extraction of the prediction),
/// <c>gsm8k</c> (official rule), <c>gsm8k_strict</c> and <c>gsm8k_flexible</c> (lm-evaluation-harness filters);</item>
/// <item>for multiple choice: <c>choice</c> (the letter extracted, or null) and <c>choice_correct</c>;</item>
/// <item>when the instruction (a chat's last user turn) carries checkable constraints (<see cref="ConstraintExtractor"/>:
/// lengths, counts, required/forbidden words, formats, entities, ordered steps): <c>fidelity</c>, the share of them the
/// prediction keeps (<see cref="FidelityChecker"/>), and <c>constraints</c>, each with its kind, whether it was kept
/// and what was measured.</item>
/// </list>
/// Model-based values (reference log-likelihood, option log-likelihoods) are added by the run itself.
/// </summary>
public static class ExampleMetrics
{
    public static JsonObject Score(EvalExample example, string prediction, bool stem)
    {
        var refs = example.References;
        var rouge = Rouge.ScoreMulti(refs, prediction, stem);
        var m = new JsonObject
        {
            ["em"] = SquadMetrics.ExactMatch(prediction, refs) ? 1 : 0,
            ["exact"] = refs.Any(r => string.Equals(r.Trim(), prediction.Trim(), StringComparison.Ordinal)) ? 1 : 0,
            ["f1"] = SquadMetrics.F1(prediction, refs),
            ["rouge1"] = rouge.Rouge1.FMeasure,
            ["rouge2"] = rouge.Rouge2.FMeasure,
            ["rougeL"] = rouge.RougeL.FMeasure,
            ["rougeLsum"] = rouge.RougeLsum.FMeasure,
            ["bleu"] = Bleu.Sentence(prediction, refs).Score,
        };
        if (refs.Count > 0 && AnswerExtraction.HasGsm8kAnswer(refs[0]))
        {
            var gold = AnswerExtraction.Gsm8kOfficial(refs[0]);
            var answer = AnswerExtraction.Gsm8kOfficial(prediction);
            m["answer"] = answer;
            m["gsm8k"] = answer == gold ? 1 : 0;
            var goldHarness = AnswerExtraction.HarnessNormalize(refs[0]);
            m["gsm8k_strict"] = AnswerExtraction.HarnessNormalize(AnswerExtraction.Gsm8kStrict(prediction)) == goldHarness ? 1 : 0;
            m["gsm8k_flexible"] = AnswerExtraction.HarnessNormalize(AnswerExtraction.Gsm8kFlexible(prediction)) == goldHarness ? 1 : 0;
        }
        if (example.Options is { } options && example.Gold is int g)
        {
            var letter = AnswerExtraction.ChoiceLetter(prediction, options);
            m["choice"] = letter?.ToString();
            m["choice_correct"] = letter == (char)('A' + g) ? 1 : 0;
        }
        var instruction = example.Record.Messages is { } msgs
            ? msgs.LastOrDefault(x => x.Role == "user")?.Content ?? ""
            : example.Record.Instruction;
        var checks = FidelityChecker.Check(ConstraintExtractor.Extract(instruction), prediction);
        if (checks.Count > 0)
        {
            m["fidelity"] = checks.Count(c => c.Kept) / (double)checks.Count;
            m["constraints"] = new JsonArray(checks.Select(c => (JsonNode?)new JsonObject
            {
                ["kind"] = c.Constraint.Kind.ToString(), ["constraint"] = c.Constraint.ToString(), ["kept"] = c.Kept, ["detail"] = c.Detail,
            }).ToArray());
        }
        return m;
    }

    /// <summary>Metrics averaged over examples (keys absent from an example are left out of its mean).</summary>
    public static readonly string[] MeanKeys =
        ["em", "exact", "f1", "rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "gsm8k", "gsm8k_strict", "gsm8k_flexible",
         "choice_correct", "ll_correct", "ll_norm_correct", "ref_ppl", "fidelity"];
}
