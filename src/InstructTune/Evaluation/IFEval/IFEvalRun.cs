namespace InstructTune.Evaluation.IFEval;

/// <summary>
/// The whole IFEval recipe: read the prompts and responses (all problems reported at once), evaluate strict and
/// loose, compute the accuracies and, when <paramref name="outDir"/> is given, write the official output files.
/// </summary>
public static class IFEvalRun
{
    public sealed record Output(IFEvalResult[] Strict, IFEvalResult[] Loose, IFEvalSummary Summary, List<string> Warnings);

    public static Output Run(string inputPath, string responsesPath, IFEvalServices services, string? outDir = null)
    {
        var prompts = IFEvalReader.ReadPrompts(inputPath);
        var warnings = new List<string>();
        var responses = IFEvalReader.ReadResponses(responsesPath, prompts, inputPath, warnings);
        var (strict, loose) = new IFEvalEvaluator(services).Evaluate(prompts, responses, inputPath);
        var summary = new IFEvalSummary(IFEvalAccuracy.Of(strict), IFEvalAccuracy.Of(loose));
        if (outDir != null) IFEvalWriter.WriteAll(outDir, strict, loose, summary, services);
        return new Output(strict, loose, summary, warnings);
    }
}
