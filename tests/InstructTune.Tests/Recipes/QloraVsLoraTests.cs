using System.Text.Json;
using InstructTune.Recipes.Quickstart;

namespace InstructTune.Tests.Recipes;

/// <summary>
/// Issue 7's QLoRA line: on the quickstart task, QLoRA's final loss is within 5 % of LoRA's. The per-step loss of
/// one 8-row batch swings several-fold from step to step (0.014–0.2 near the end), so "final loss" here is the
/// mean response loss over the last 50 of 900 steps, the same steps and batches for both methods.
/// </summary>
[Trait("Category", "Slow")]
public sealed class QloraVsLoraTests
{
    private static double FinalLoss(string dir)
    {
        var losses = File.ReadLines(Path.Combine(dir, "runs", "tune", "metrics.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList();
        return losses.TakeLast(50).Average();
    }

    [Fact]
    public void QloraFinalLossIsWithinFivePercentOfLora()
    {
        var lora = Directory.CreateTempSubdirectory("qs-lora").FullName;
        var qlora = Directory.CreateTempSubdirectory("qs-qlora").FullName;
        QuickstartRecipe.Run(QuickstartOptions.Default with { OutDir = lora }, new PlainQuickstartProgress(TextWriter.Null));
        QuickstartRecipe.Run(QuickstartOptions.Default with { OutDir = qlora, Method = "qlora" }, new PlainQuickstartProgress(TextWriter.Null));
        double l = FinalLoss(lora), q = FinalLoss(qlora);
        Assert.True(Math.Abs(q - l) <= 0.05 * l, $"QLoRA {q:F4} vs LoRA {l:F4}");
    }
}
