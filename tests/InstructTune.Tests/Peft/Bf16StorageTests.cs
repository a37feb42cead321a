using System.Text.Json;
using System.Text.RegularExpressions;
using InstructTune.Checkpoints;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Peft;
using InstructTune.Peft.Lora;
using InstructTune.Recipes;
using InstructTune.Training.Config;

namespace InstructTune.Tests.Peft;

/// <summary>
/// <c>model.weight_storage: bfloat16</c> (issue 12): the frozen base weights of a PEFT run are held as bf16. The
/// reference is the same model in float32 whose Linear weights were rounded to bf16 (torch's round-to-nearest-even,
/// <see cref="BFloat16.RoundTrip"/>): training must follow it step for step (the bf16 GEMM widens the weights to
/// float32, so only summation order differs), every frozen Linear must be converted, and the recipe must report
/// half the frozen Linear bytes.
/// </summary>
public class Bf16StorageTests
{
    private static LlamaModel RoundedReference(string kind)
    {
        var model = LoraInvariantTests.TinyModel(kind);
        var embeddings = model.NamedModules().Select(m => m.Module).OfType<Embedding>().Select(e => e.Weight).ToHashSet();
        foreach (var l in model.NamedModules().Select(m => m.Module).OfType<Linear>().Where(l => !embeddings.Contains(l.Weight)))
            BFloat16.RoundTrip(l.Weight.Span);
        return model;
    }

    [Theory, InlineData("llama-gqa"), InlineData("qwen2-tied-bias")]
    public void LoraOverBf16StorageTrainsAsLoraOverTheBf16RoundedBase(string kind)
    {
        var config = new LoraConfig { Rank = 4, Alpha = 8, Dropout = 0.1, TargetModules = ["q_proj", "v_proj"] };
        var reference = RoundedReference(kind);
        LoraInjector.Inject(reference, config, seed: 1);
        var stored = LoraInvariantTests.TinyModel(kind);
        LoraInjector.Inject(stored, config, seed: 1, bf16Base: true);
        int converted = FrozenBase.ToBf16(stored);

        // Every frozen Linear is bf16 now: k/o/gate/up/down of each layer (+ an untied lm_head); only LoRA's A and B
        // (trainable) remain float32 Linears, and each LoRA base is bf16.
        int layers = stored.Config.NumHiddenLayers;
        Assert.Equal(5 * layers + (stored.Config.TieWordEmbeddings ? 0 : 1), converted);
        // (a tied lm_head shares the float32 embedding table and is kept)
        Assert.All(stored.NamedModules().Where(m => m.Module is Linear && !(m.Name == "lm_head" && stored.Config.TieWordEmbeddings)),
            m => Assert.Matches(@"\.lora_[AB]$", m.Name));
        Assert.All(LoraInjector.Find(stored), l => Assert.IsType<Bf16Linear>(l.Layer.QuantizedBase));
        Assert.DoesNotContain(stored.NamedParameters(), p => p.Name.EndsWith("proj.weight") || p.Name == "lm_head.weight" && !stored.Config.TieWordEmbeddings);

        LoraInvariantTests.TrainAlike(reference, stored, "float32 over the bf16 round trip", "bf16 storage");
    }

    [Fact]
    public void TheRecipeHoldsFrozenWeightsInBf16AndReportsTheSaving()
    {
        var work = Directory.CreateTempSubdirectory("bf16-recipe").FullName;
        var model = Path.Combine(work, "model");
        var options = new InstructTune.Tokenizers.Training.BpeTrainerOptions(VocabSize: 280, MinFrequency: 1);
        var lines = Enumerable.Range(0, 16).Select(i => JsonSerializer.Serialize(new { instruction = $"Say {i}.", input = "", output = $"{i} is a number." })).ToList();
        InstructTune.Tokenizers.Training.ByteLevelBpeTrainer.Save(InstructTune.Tokenizers.Training.ByteLevelBpeTrainer.Train(lines, options), options, model);
        var mc = new LlamaConfig { VocabSize = 280, HiddenSize = 256, IntermediateSize = 512, NumHiddenLayers = 2, NumAttentionHeads = 4,
            NumKeyValueHeads = 2, MaxPositionEmbeddings = 256 };
        RandomCheckpoint.Create(mc, model, 1, DType.F32);
        var data = Path.Combine(work, "train.jsonl");
        File.WriteAllLines(data, lines);
        (string Footprint, double Loss) Run(string storage)
        {
            var config = ConfigLoader.LoadFromString<TrainConfig>("", [$"model.path={model}", $"data.path={data}", "data.max_seq_len=64",
                "data.validation_fraction=0", "data.template='{instruction} => {output}'", $"checkpoint.output_dir={Path.Combine(work, storage)}",
                "training.max_steps=3", "training.micro_batch_size=4", "logging.tensor_board=false", "lora.rank=2",
                $"model.weight_storage={storage}"]);
            using var recipe = FineTuneRecipe.Setup(config);
            var footprint = recipe.Footprint();
            return (footprint, recipe.Train(quiet: true).FinalLoss);
        }
        var (f32, lossF32) = Run("float32");
        var (bf16, lossBf16) = Run("bfloat16");
        // All 7 projections of both layers (q/v as LoRA bases) and the untied lm_head: float32 bytes → half.
        int H = mc.HiddenSize, kv = mc.NumKeyValueHeads * (H / mc.NumAttentionHeads);
        long linearParams = mc.NumHiddenLayers * (2L * H * H + 2L * H * kv + 3L * H * mc.IntermediateSize) + (long)mc.VocabSize * H;
        double savedMiB = linearParams * 2 / 1048576.0;   // 2.39 MiB
        var m = Regex.Match(bf16, @"([\d.]+) MiB of it bf16 in (\d+) layers: ([\d.]+) MiB saved against float32");
        Assert.True(m.Success, bf16);
        Assert.Equal(mc.NumHiddenLayers * 7 + 1, int.Parse(m.Groups[2].Value));
        Assert.InRange(double.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture), savedMiB - 0.06, savedMiB + 0.06);
        double Frozen(string line) => double.Parse(Regex.Match(line, @"([\d.]+) MiB frozen").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(Frozen(f32) - Frozen(bf16), savedMiB - 0.11, savedMiB + 0.11);
        Assert.DoesNotContain("bf16", f32);
        // The random checkpoint's weights are not bf16-exact: close, not equal.
        Assert.True(Math.Abs(lossF32 - lossBf16) < 0.05 * lossF32, $"loss {lossF32} (float32) vs {lossBf16} (bf16 storage)");
    }

    [Fact]
    public void Bf16StorageIsRefusedForFullFineTuning()
    {
        var config = ConfigLoader.LoadFromString<TrainConfig>("", ["model.weight_storage=bfloat16", "training.method=full"]);
        var e = Assert.Throws<ConfigException>(() => FineTuneRecipe.Validate(config));
        Assert.Contains("model.weight_storage", e.Message);
        Assert.Contains("full", e.Message);
        FineTuneRecipe.Validate(ConfigLoader.LoadFromString<TrainConfig>("", ["model.weight_storage=bfloat16", "training.method=lora"]));
    }
}
