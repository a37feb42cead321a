// itune score --reward: rewards of preference pairs from a trained reward model (training.objective: reward).
using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Training.Preference;

namespace InstructTune.Cli.Commands;

public static class RewardScoreCommand
{
    public static int Run(string modelDir, string? adapterDir, string input, string? output, string template, int maxSeqLen)
    {
        var (model, head, tokenizer) = RewardScoring.Load(modelDir, adapterDir);
        var pairs = RewardScoring.ScorePairs(model, head, tokenizer, input, template, modelDir, maxSeqLen, 8, out var stats);
        var lines = pairs.Select(r => JsonSerializer.Serialize(new { index = r.Index, chosen = r.Chosen, rejected = r.Rejected }));
        var text = string.Concat(lines.Select(l => l + "\n"));
        if (output != null) AtomicFile.WriteAllText(output, text);
        else { Console.Out.Write(text); Console.Out.Flush(); }
        double accuracy = pairs.Count == 0 ? double.NaN : pairs.Count(r => r.Chosen > r.Rejected) / (double)pairs.Count;
        Console.Error.WriteLine($"reward model: {pairs.Count} pairs scored ({stats.RecordsRead} records read"
            + (stats.RejectedByReason.Count > 0 ? ", skipped: " + string.Join(", ", stats.RejectedByReason.Select(r => $"{r.Key} {r.Value}")) : "")
            + $"); pairwise accuracy {accuracy:F4}, mean reward chosen {pairs.Select(r => r.Chosen).DefaultIfEmpty().Average():F4}, rejected {pairs.Select(r => r.Rejected).DefaultIfEmpty().Average():F4}");
        return 0;
    }
}
