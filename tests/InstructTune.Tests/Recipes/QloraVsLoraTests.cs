using System.Text.Json;
using Xunit.Abstractions;
using InstructTune.Recipes.Quickstart;

namespace InstructTune.Tests.Recipes;

/// <summary>
/// Issue 7's QLoRA line, as worded: on the quickstart task, QLoRA's final loss is within 5 % of LoRA's. "Final
/// loss" is the final adapter's mean response loss on the held-out examples (the eval_loss the recipe logs at its
/// last step), averaged over three seeds: one run is too noisy to resolve 5 % (the per-step training loss of one
/// 8-row batch swings several-fold near the end, and single-run figures moved 10–13 % between two builds that
/// differ only in float rounding).
/// History: with the session-2 build this failed, QLoRA 9.5 % *lower* than LoRA on every seed (held-out 0.332 vs
/// 0.366). With the GEMM-tiled training attention (session 3; only float summation order differs) it passes:
/// QLoRA 0.3048 vs LoRA 0.3110 (seed 42 0.3356 vs 0.3008, seed 1 0.3154 vs 0.2972, seed 7 0.2634 vs 0.3350).
/// Per-seed differences of ±10 % in both directions mean this measure sits near its tolerance; the adapter
/// training itself is pinned exactly by LoraInvariantTests.QloraTrainsAsLoraOverItsDequantisedBase (QLoRA trains
/// to the same adapter as LoRA over a float32 base holding the NF4 round trip of the weights).
/// </summary>
[Trait("Category", "Slow")]
public sealed class QloraVsLoraTests(ITestOutputHelper output)
{
    private static readonly int[] Seeds = [42, 1, 7];

    private static (double EvalLoss, double LastFiftyTrain) FinalLoss(string dir)
    {
        var lines = File.ReadLines(Path.Combine(dir, "runs", "tune", "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        double eval = lines.Last().GetProperty("eval_loss").GetDouble();
        return (eval, lines.TakeLast(50).Average(e => e.GetProperty("loss").GetDouble()));
    }

    private static (double EvalLoss, double LastFiftyTrain) Run(string method, int seed)
    {
        var dir = Directory.CreateTempSubdirectory($"qs-{method}-{seed}-").FullName;
        try
        {
            QuickstartRecipe.Run(QuickstartOptions.Default with { OutDir = dir, Method = method, Seed = seed }, new PlainQuickstartProgress(TextWriter.Null));
            return FinalLoss(dir);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void QloraFinalLossIsWithinFivePercentOfLora()
    {
        var lora = Seeds.Select(s => Run("lora", s)).ToList();
        var qlora = Seeds.Select(s => Run("qlora", s)).ToList();
        double l = lora.Average(r => r.EvalLoss), q = qlora.Average(r => r.EvalLoss);
        string per = string.Join("; ", Seeds.Select((s, i) => $"seed {s}: {qlora[i].EvalLoss:F4} vs {lora[i].EvalLoss:F4}"));
        string trainWindow = string.Join("; ", Seeds.Select((s, i) => $"{qlora[i].LastFiftyTrain:F4} vs {lora[i].LastFiftyTrain:F4}"));
        output.WriteLine($"held-out loss QLoRA {q:F4} vs LoRA {l:F4} ({per}); last-50 training loss {trainWindow}");
        Assert.True(Math.Abs(q - l) <= 0.05 * l, $"held-out loss QLoRA {q:F4} vs LoRA {l:F4} ({per})");
    }
}
