using System.Text.Json.Nodes;
using InstructTune.Evaluation.Metrics;

namespace InstructTune.Evaluation.Generalization;

/// <summary>
/// Zero-/few-shot curves and cross-task generalisation on the user's own data (<c>itune eval run --shots-from
/// TRAIN</c>): the evaluated examples are seen tasks (their task label occurs in the training file) or held-out tasks;
/// for each k the prompt is the instruction, k worked examples drawn from the training file (<see cref="FewShot"/>:
/// same task, else same structural cluster, else any; seeded), then the query; the output's token F1 (SQuAD) with the
/// reference is the score. Cross-task: tasks are clustered by instruction signature (<see cref="TaskClusterer"/>:
/// leading verb | level | format constraints); a held-out task is in-cluster when some training task shares its
/// cluster, else cross-cluster; the drop is in-cluster − cross-cluster at each k.
/// </summary>
public static class ShotCurves
{
    public const string Definition =
        "Shot curves: for k examples in the prompt (drawn from the training file: the same task when it has them, else a " +
        "task of the same instruction-signature cluster, else any; seeded), the mean token F1 (SQuAD) of the outputs with " +
        "the references, separately for seen tasks (the task label occurs in the training file) and held-out tasks. " +
        "Cross-task generalisation: held-out tasks whose cluster (leading verb | complexity level | format constraints of " +
        "the instruction) has a training task are in-cluster, the others cross-cluster; drop = in-cluster − cross-cluster.";

    public static JsonObject Evaluate(IReadOnlyList<TaskExample> train, IReadOnlyList<TaskExample> eval, IReadOnlyList<int> ks,
        ITextGenerator generator, int seed)
    {
        var trainTasks = train.Select(t => t.TaskId).ToHashSet(StringComparer.Ordinal);
        var clusters = TaskClusterer.Cluster(train.Concat(eval));
        var trainClusters = trainTasks.Select(t => clusters[t]).ToHashSet(StringComparer.Ordinal);
        var rows = new JsonArray();
        foreach (var k in ks)
        {
            var rng = new Random(unchecked(seed * 1_000_003 + k));
            var prompts = eval.Select(e => FewShot.Prompt(e, FewShot.Draw(e, k, train, clusters, rng))).ToList();
            var outputs = generator.Generate(prompts);
            if (outputs.Count != prompts.Count) throw new InvalidOperationException($"{outputs.Count} outputs for {prompts.Count} prompts");
            var groups = new Dictionary<string, List<double>> { ["seen"] = [], ["held_out"] = [], ["in_cluster"] = [], ["cross_cluster"] = [] };
            for (int i = 0; i < eval.Count; i++)
            {
                double f1 = SquadMetrics.F1(outputs[i].Trim(), [eval[i].Output]);
                if (trainTasks.Contains(eval[i].TaskId)) groups["seen"].Add(f1);
                else
                {
                    groups["held_out"].Add(f1);
                    groups[trainClusters.Contains(clusters[eval[i].TaskId]) ? "in_cluster" : "cross_cluster"].Add(f1);
                }
            }
            var row = new JsonObject { ["k"] = k };
            foreach (var (name, xs) in groups)
            {
                row[name] = xs.Count == 0 ? null : Math.Round(xs.Average(), 6);
                row[name + "_count"] = xs.Count;
            }
            row["seen_minus_held_out"] = groups["seen"].Count > 0 && groups["held_out"].Count > 0 ? Math.Round(groups["seen"].Average() - groups["held_out"].Average(), 6) : null;
            row["cross_task_drop"] = groups["in_cluster"].Count > 0 && groups["cross_cluster"].Count > 0 ? Math.Round(groups["in_cluster"].Average() - groups["cross_cluster"].Average(), 6) : null;
            rows.Add(row);
        }
        return new JsonObject
        {
            ["examples"] = eval.Count,
            ["train_examples"] = train.Count,
            ["seen_tasks"] = eval.Select(e => e.TaskId).Distinct().Count(trainTasks.Contains),
            ["held_out_tasks"] = eval.Select(e => e.TaskId).Distinct().Count(t => !trainTasks.Contains(t)),
            ["clusters"] = clusters.Values.Distinct().Count(),
            ["by_k"] = rows,
            ["definition"] = Definition,
        };
    }
}
