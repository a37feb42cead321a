using InstructTune.Evaluation.IFEval;

namespace InstructTune.Tests.Evaluation.IFEval;

/// <summary>The GPT-4 responses published with IFEval must score exactly the published accuracies.</summary>
public class IFEvalPublishedFiguresTests
{
    [Fact]
    public void Gpt4_MatchesPublishedAccuracies()
    {
        var run = IFEvalRun.Run(IFEvalSharedData.Input, IFEvalSharedData.Responses(IFEvalSharedData.Gpt4), IFEvalSharedData.Services);
        var s = run.Summary;
        // Zhou et al. 2023, GPT-4: strict prompt 76.89 %, strict instruction 83.57 %, loose prompt 79.30 %, loose instruction 85.37 %.
        Assert.Equal(541, s.Strict.Prompts);
        Assert.Equal(76.89, Math.Round(s.Strict.PromptLevel * 100, 2));
        Assert.Equal(83.57, Math.Round(s.Strict.InstructionLevel * 100, 2));
        Assert.Equal(79.30, Math.Round(s.Loose.PromptLevel * 100, 2));
        Assert.Equal(85.37, Math.Round(s.Loose.InstructionLevel * 100, 2));
    }
}
