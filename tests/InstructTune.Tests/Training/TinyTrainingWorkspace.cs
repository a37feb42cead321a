using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Models;
using InstructTune.Tokenizers.Training;

namespace InstructTune.Tests.Training;

/// <summary>
/// A temp folder for recipe tests that run `itune train`: a small Alpaca file of arithmetic and word tasks
/// (train.jsonl) and a tiny random Llama (base/) with a byte-level BPE tokenizer trained on the same text.
/// </summary>
public static class TinyTrainingWorkspace
{
    public static (string Dir, string ModelDir, string DataPath) Create(string prefix, int records, int maxPositions)
    {
        var dir = Directory.CreateTempSubdirectory(prefix).FullName;
        var rng = new Random(5);
        var lines = new List<string>();
        for (int i = 0; i < records; i++)
        {
            int a = rng.Next(10, 99), b = rng.Next(10, 99);
            lines.Add(i % 2 == 0
                ? JsonSerializer.Serialize(new { instruction = "Add the two numbers.", input = $"{a} and {b}", output = $"{a + b}" })
                : JsonSerializer.Serialize(new { instruction = "Repeat the word twice.", input = $"w{a}", output = $"w{a} w{a}" }));
        }
        var (modelDir, dataPath) = Create(dir, lines, maxPositions);
        return (dir, modelDir, dataPath);
    }

    /// <summary>Writes <paramref name="lines"/> (JSONL records) to dir/train.jsonl and a tiny random Llama with a tokenizer trained on them to dir/base.</summary>
    public static (string ModelDir, string DataPath) Create(string dir, IReadOnlyList<string> lines, int maxPositions)
    {
        var dataPath = Path.Combine(dir, "train.jsonl");
        File.WriteAllLines(dataPath, lines);
        var modelDir = Path.Combine(dir, "base");
        var options = new BpeTrainerOptions(VocabSize: 320, MinFrequency: 2);
        ByteLevelBpeTrainer.Save(ByteLevelBpeTrainer.Train(lines, options), options, modelDir);
        var config = new LlamaConfig
        {
            VocabSize = 320, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2, NumAttentionHeads = 4,
            NumKeyValueHeads = 2, MaxPositionEmbeddings = maxPositions, BosTokenId = 0, EosTokenIds = [1],
        };
        RandomCheckpoint.Create(config, modelDir, 3, DType.F32);
        return (modelDir, dataPath);
    }
}
