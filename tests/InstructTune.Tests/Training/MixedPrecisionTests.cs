// training.precision: bf16 end to end through the recipe: it trains (loss falls like float32's, within bf16
// rounding of it) and is not ignored (the losses differ from float32's); a bad value names the key.
using InstructTune.Recipes;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Training;

public class MixedPrecisionTests
{
    private static TrainConfig Config(string dir, string modelDir, string run, params string[] overrides) =>
        ConfigLoader.Load<TrainConfig>(Path.Combine(dir, "train.yaml"), [$"checkpoint.output_dir={run}", .. overrides]);

    [Fact]
    public void Bf16_training_follows_the_float32_loss_curve_and_is_not_ignored() => TrainAndCompare("mixedprec");

    /// <summary>Trains the tiny recipe 10 steps in float32 and in bf16 (on whatever bf16 GEMM backend is current)
    /// and checks bf16 learns, stays within bf16 rounding of float32 per step, and differs from it.</summary>
    internal static void TrainAndCompare(string tag)
    {
        var (dir, modelDir, data) = TinyTrainingWorkspace.Create(tag, records: 64, maxPositions: 256);
        try
        {
            File.WriteAllText(Path.Combine(dir, "train.yaml"), $"""
                model:
                  path: {modelDir}
                data:
                  path: {data}
                  format: alpaca
                  template: alpaca
                  max_seq_len: 256
                  validation_fraction: 0
                training:
                  method: full
                  max_steps: 10
                  micro_batch_size: 8
                  learning_rate: 0.003
                  seed: 7
                logging:
                  tensor_board: false
                """);
            var f32 = FineTuneRecipe.Setup(Config(dir, modelDir, Path.Combine(dir, "f32"))).Train(quiet: true);
            var bf16 = FineTuneRecipe.Setup(Config(dir, modelDir, Path.Combine(dir, "bf16"), "training.precision=bf16")).Train(quiet: true);
            Assert.Equal(f32.LossCurve.Count, bf16.LossCurve.Count);
            double first = f32.LossCurve[0].Loss, maxDiff = 0;
            for (int i = 0; i < f32.LossCurve.Count; i++)
            {
                double d = Math.Abs(f32.LossCurve[i].Loss - bf16.LossCurve[i].Loss);
                maxDiff = Math.Max(maxDiff, d);
                // bf16 operands (8 significant bits) move a loss of a few nats by a few hundredths over 10 steps.
                Assert.True(d <= 0.05 * f32.LossCurve[i].Loss, $"step {f32.LossCurve[i].Step}: bf16 loss {bf16.LossCurve[i].Loss} vs float32 {f32.LossCurve[i].Loss}");
            }
            Assert.True(bf16.FinalLoss < first * 0.9, $"bf16 training did not learn: {first} → {bf16.FinalLoss}");
            Assert.True(maxDiff > 1e-6, "training.precision=bf16 gave the float32 losses: the key was ignored");
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }

    [Fact]
    public void A_bad_precision_names_the_key()
    {
        var (dir, modelDir, data) = TinyTrainingWorkspace.Create("mixedprec-bad", records: 8, maxPositions: 64);
        try
        {
            File.WriteAllText(Path.Combine(dir, "train.yaml"), $"model:\n  path: {modelDir}\ndata:\n  path: {data}\n  format: alpaca\n");
            var e = Assert.ThrowsAny<Exception>(() => Config(dir, modelDir, Path.Combine(dir, "run"), "training.precision=fp8"));
            Assert.Contains("training.precision", e.Message);
        }
        finally { try { Directory.Delete(dir, true); } catch (IOException) { } }
    }
}

/// <summary>
/// Without libdnnl every bf16 path runs on the managed kernels: the backend is forced off (as
/// INSTRUCTTUNE_BF16_GEMM=managed or a machine without libdnnl.so does) and the same recipe still trains in bf16.
/// In the Console collection (not parallel) because the backend is process-wide, as ComputeBf16Tests sets it too.
/// </summary>
[Collection("Console")]
public class MixedPrecisionManagedTests
{
    [Fact]
    public void Bf16_training_with_the_onednn_backend_forced_off_runs_on_the_managed_kernels()
    {
        var saved = InstructTune.Engine.Kernels.Gemm.Bf16Backend;
        try
        {
            InstructTune.Engine.Kernels.Gemm.Bf16Backend = InstructTune.Engine.Kernels.Bf16GemmBackend.Managed;
            MixedPrecisionTests.TrainAndCompare("mixedprec-managed");
            Assert.Equal(InstructTune.Engine.Kernels.Bf16GemmBackend.Managed, InstructTune.Engine.Kernels.Gemm.Bf16Backend);
        }
        finally { InstructTune.Engine.Kernels.Gemm.Bf16Backend = saved; }
    }
}
