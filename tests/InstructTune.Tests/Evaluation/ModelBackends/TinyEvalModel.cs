using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Models;
using InstructTune.Tokenizers.Training;

namespace InstructTune.Tests.Evaluation.ModelBackends;

/// <summary>
/// A tiny random Llama (2 layers, hidden 32, vocab 320, 256 positions) with a byte-level BPE tokenizer trained on a
/// few lines, made once per test run in a temp folder, and LoRA adapters written by hand in the PEFT layout.
/// </summary>
internal static class TinyEvalModel
{
    private static readonly Lazy<string> Dir = new(Create);

    public static string Path => Dir.Value;

    private static string Create()
    {
        var dir = Directory.CreateTempSubdirectory("evalmodel").FullName;
        string[] lines =
        [
            "What is the capital of France? The capital is Paris.",
            "List 3 primary colours as a bullet list: red, blue, yellow.",
            "If it is raining, recommend an umbrella; otherwise recommend sunglasses.",
            "First boil the water, then add the pasta, finally drain it.",
            "Write the word hello in all capital letters: HELLO.",
            "Add 4 and 5, then multiply the result by 2. The answer is 18.",
        ];
        var options = new BpeTrainerOptions(VocabSize: 320, MinFrequency: 2);
        ByteLevelBpeTrainer.Save(ByteLevelBpeTrainer.Train(lines, options), options, dir);
        var config = new LlamaConfig
        {
            VocabSize = 320, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4,
            NumKeyValueHeads = 2, MaxPositionEmbeddings = 256, BosTokenId = 0, EosTokenIds = [1],
        };
        RandomCheckpoint.Create(config, dir, 11, DType.F32);
        return dir;
    }

    /// <summary>Writes a PEFT adapter for one module with A [r, inDim] and B [outDim, r] filled with seeded noise.</summary>
    public static string WriteAdapter(string module, int inDim, int outDim, int rank = 2, int seed = 1)
    {
        var dir = Directory.CreateTempSubdirectory("evalmodel-adapter").FullName;
        var rng = new Random(seed);
        float[] Noise(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        SafetensorsWriter.Write(System.IO.Path.Combine(dir, "adapter_model.safetensors"),
        [
            TensorToWrite.FromF32($"base_model.model.{module}.lora_A.weight", DType.F32, [rank, inDim], Noise(rank * inDim)),
            TensorToWrite.FromF32($"base_model.model.{module}.lora_B.weight", DType.F32, [outDim, rank], Noise(outDim * rank)),
        ]);
        File.WriteAllText(System.IO.Path.Combine(dir, "adapter_config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["peft_type"] = "LORA", ["r"] = rank, ["lora_alpha"] = 4 * rank, ["target_modules"] = new[] { module[(module.LastIndexOf('.') + 1)..] },
        }));
        return dir;
    }
}
