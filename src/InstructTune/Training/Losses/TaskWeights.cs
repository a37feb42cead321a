using InstructTune.Data.Records;
using InstructTune.Training.Config;

namespace InstructTune.Training.Losses;

/// <summary>
/// Per-task loss weights, so frequent tasks do not drown rare ones: fixed (from the config, by task name,
/// default 1), inverse frequency (w_k = N / (K·N_k) over the learned tokens of the dataset, so every task
/// carries the same total weight), or none. Learned uncertainty weights live in <see cref="UncertaintyWeighting"/>.
/// </summary>
public static class TaskWeights
{
    public static float[]? Compute(TaskWeighting mode, IReadOnlyList<string> taskNames, IEnumerable<TokenizedExample> examples,
        IReadOnlyDictionary<string, double>? fixedWeights)
    {
        switch (mode)
        {
            case TaskWeighting.None:
            case TaskWeighting.Uncertainty:
                return null;
            case TaskWeighting.Fixed:
                if (fixedWeights != null)
                    foreach (var name in fixedWeights.Keys)
                        if (!taskNames.Contains(name))
                            throw new ConfigException($"loss.task_weights names task '{name}', which the dataset does not have (tasks: {string.Join(", ", taskNames)})");
                return taskNames.Select(n => fixedWeights != null && fixedWeights.TryGetValue(n, out var w) ? (float)w : 1f).ToArray();
            case TaskWeighting.InverseFrequency:
                var counts = new long[taskNames.Count];
                foreach (var e in examples) if (e.TaskId >= 0 && e.TaskId < counts.Length) counts[e.TaskId] += e.LearnedTokens;
                long total = counts.Sum();
                int present = counts.Count(c => c > 0);
                return counts.Select(c => c == 0 ? 0f : (float)(total / ((double)present * c))).ToArray();
            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, null);
        }
    }
}
