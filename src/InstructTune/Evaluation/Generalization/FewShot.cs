namespace InstructTune.Evaluation.Generalization;

/// <summary>One instance of a task: instruction, optional input, gold output.</summary>
public sealed record TaskExample(string TaskId, string Instruction, string Input, string Output);

/// <summary>
/// k-shot prompts: the instruction, k worked examples, then the query. Examples come from the training split,
/// drawn with a seeded generator: from the same task when it has enough training examples (seen tasks), else
/// from tasks of the same structural cluster, else from any task (held-out tasks have none of their own).
/// Never the query itself.
/// </summary>
public static class FewShot
{
    public static string Prompt(TaskExample query, IReadOnlyList<TaskExample> shots)
    {
        var sb = new System.Text.StringBuilder(query.Instruction.Trim()).Append("\n\n");
        for (int i = 0; i < shots.Count; i++)
            sb.Append($"Example {i + 1}:\n").Append(shots[i].Input.Length > 0 ? $"Input: {shots[i].Input}\n" : "")
              .Append($"Output: {shots[i].Output}\n\n");
        if (shots.Count > 0) sb.Append("Now your turn:\n");
        if (query.Input.Length > 0) sb.Append($"Input: {query.Input}\n");
        return sb.Append("Output:").ToString();
    }

    public static IReadOnlyList<TaskExample> Draw(TaskExample query, int k, IReadOnlyList<TaskExample> train,
        IReadOnlyDictionary<string, string> clusterOfTask, Random rng)
    {
        if (k == 0) return [];
        var pool = train.Where(e => e.TaskId == query.TaskId && !ReferenceEquals(e, query) && e != query).ToList();
        if (pool.Count < k && clusterOfTask.TryGetValue(query.TaskId, out var cluster))
            pool = pool.Concat(train.Where(e => e.TaskId != query.TaskId && clusterOfTask.GetValueOrDefault(e.TaskId) == cluster)).ToList();
        if (pool.Count < k) pool = pool.Concat(train.Where(e => e.TaskId != query.TaskId && !pool.Contains(e))).ToList();
        return pool.OrderBy(_ => rng.Next()).Take(k).ToList();
    }
}
