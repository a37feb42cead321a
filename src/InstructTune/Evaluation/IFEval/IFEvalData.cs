using System.Text.Json;

namespace InstructTune.Evaluation.IFEval;

/// <summary>One line of <c>input_data.jsonl</c>: a prompt with its instruction ids and their kwargs.</summary>
/// <param name="Line">1-based line number in the input file, for messages.</param>
public sealed record IFEvalPrompt(long Key, string Prompt, IReadOnlyList<string> InstructionIds,
    IReadOnlyList<JsonElement> Kwargs, int Line);

/// <summary>One evaluated prompt in IFEval's output shape (<c>OutputExample</c>).</summary>
public sealed record IFEvalResult(IReadOnlyList<string> InstructionIds, string Prompt, string Response,
    bool FollowAllInstructions, IReadOnlyList<bool> FollowInstructionList);

/// <summary>The four headline accuracies plus per-instruction accuracy (tier 1 ids, tier 0 categories).</summary>
public sealed record IFEvalAccuracy(double PromptLevel, double InstructionLevel, int Prompts, int Instructions,
    IReadOnlyDictionary<string, double> ByInstruction, IReadOnlyDictionary<string, double> ByCategory)
{
    /// <summary>print_report's numbers for one mode.</summary>
    public static IFEvalAccuracy Of(IReadOnlyList<IFEvalResult> results)
    {
        int promptCorrect = 0, instTotal = 0, instCorrect = 0;
        var tier1 = new SortedDictionary<string, (int Ok, int All)>(StringComparer.Ordinal);
        var tier0 = new SortedDictionary<string, (int Ok, int All)>(StringComparer.Ordinal);
        foreach (var r in results)
        {
            if (r.FollowInstructionList.All(f => f)) promptCorrect++;
            instTotal += r.InstructionIds.Count;
            for (int i = 0; i < r.InstructionIds.Count; i++)
            {
                bool ok = r.FollowInstructionList[i];
                if (ok) instCorrect++;
                Bump(tier1, r.InstructionIds[i], ok);
                Bump(tier0, r.InstructionIds[i].Split(':')[0], ok);
            }
        }
        return new IFEvalAccuracy(
            results.Count == 0 ? 0 : (double)promptCorrect / results.Count,
            instTotal == 0 ? 0 : (double)instCorrect / instTotal,
            results.Count, instTotal,
            tier1.ToDictionary(kv => kv.Key, kv => (double)kv.Value.Ok / kv.Value.All),
            tier0.ToDictionary(kv => kv.Key, kv => (double)kv.Value.Ok / kv.Value.All));
    }

    private static void Bump(SortedDictionary<string, (int Ok, int All)> d, string k, bool ok)
    {
        var (o, a) = d.GetValueOrDefault(k);
        d[k] = (o + (ok ? 1 : 0), a + 1);
    }
}

/// <summary>Strict and loose accuracies of one response set.</summary>
public sealed record IFEvalSummary(IFEvalAccuracy Strict, IFEvalAccuracy Loose);
