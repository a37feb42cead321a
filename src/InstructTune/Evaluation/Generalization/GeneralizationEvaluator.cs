namespace InstructTune.Evaluation.Generalization;

/// <summary>Mean score at one shot count for seen and unseen tasks, and the drop seen − unseen.</summary>
public sealed record ShotRow(int K, double Seen, double Unseen, int SeenCount, int UnseenCount)
{
    public double Drop => Seen - Unseen;
}

public sealed record GeneralizationResult(IReadOnlyList<ShotRow> Shots, IReadOnlyDictionary<string, double> UnseenByCluster);

/// <summary>
/// Zero- and k-shot evaluation (k = 0, 1, 2, 4 by default) on evaluation examples whose task is either seen
/// (has training examples) or held out. One batch per k goes to the generator. The score function compares an
/// output with the gold output (e.g. ROUGE-L or token F1).
/// </summary>
public static class GeneralizationEvaluator
{
    public static GeneralizationResult Evaluate(IReadOnlyList<TaskExample> train, IReadOnlyList<TaskExample> eval,
        ISet<string> heldOutTasks, ITextGenerator generator, Func<string, string, double> score,
        IReadOnlyList<int>? ks = null, int seed = 0)
    {
        ks ??= [0, 1, 2, 4];
        var clusters = TaskClusterer.Cluster(train.Concat(eval));
        var rows = new List<ShotRow>();
        var unseenByCluster = new Dictionary<string, List<double>>();
        foreach (var k in ks)
        {
            // Not HashCode.Combine: it is salted per process, and shot draws must repeat across runs.
            var rng = new Random(unchecked(seed * 1_000_003 + k));
            var prompts = eval.Select(e => FewShot.Prompt(e, FewShot.Draw(e, k, train, clusters, rng))).ToList();
            var outputs = generator.Generate(prompts);
            if (outputs.Count != prompts.Count)
                throw new InvalidOperationException($"generator returned {outputs.Count} outputs for {prompts.Count} prompts");
            var seen = new List<double>();
            var unseen = new List<double>();
            for (int i = 0; i < eval.Count; i++)
            {
                double s = score(outputs[i], eval[i].Output);
                if (heldOutTasks.Contains(eval[i].TaskId))
                {
                    unseen.Add(s);
                    if (k == ks[0])
                    {
                        var c = clusters[eval[i].TaskId];
                        if (!unseenByCluster.TryGetValue(c, out var l)) unseenByCluster[c] = l = [];
                        l.Add(s);
                    }
                }
                else seen.Add(s);
            }
            rows.Add(new ShotRow(k, Mean(seen), Mean(unseen), seen.Count, unseen.Count));
        }
        return new GeneralizationResult(rows, unseenByCluster.ToDictionary(kv => kv.Key, kv => kv.Value.Average()));
    }

    private static double Mean(List<double> xs) => xs.Count == 0 ? double.NaN : xs.Average();
}
