using InstructTune.Data.TaskSuite;
using InstructTune.Recipes.Quickstart;
using Xunit;

namespace InstructTune.Tests.Recipes;

/// <summary>The README's run at its default size: the acceptance line of issue 7 (≤ 10 minutes, EM ≥ 0.8 after).</summary>
[Trait("Category", "Slow")]
public sealed class QuickstartFullRunTests
{
    [Fact]
    public void DefaultRunLearnsHeldOutExamplesWithinTenMinutes()
    {
        var dir = Path.Combine(Path.GetTempPath(), "itune-qs-full-" + Guid.NewGuid().ToString("N"));
        try
        {
            var r = QuickstartRecipe.Run(QuickstartOptions.Default with { OutDir = dir }, new PlainQuickstartProgress(TextWriter.Null));
            Assert.True(r.Minutes <= 10, $"took {r.Minutes:F2} minutes");
            Assert.True(r.Before.ExactMatch[SuiteSplit.HeldOutExamples] <= 0.05, $"base already scores {r.Before.ExactMatch[SuiteSplit.HeldOutExamples]:F3}");
            Assert.True(r.After.ExactMatch[SuiteSplit.HeldOutExamples] >= 0.8, $"after tuning {r.After.ExactMatch[SuiteSplit.HeldOutExamples]:F3}");
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }
}
