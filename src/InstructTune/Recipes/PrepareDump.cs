using System.Text.Json;
using InstructTune.Data.Records;
using InstructTune.Tokenizers;

namespace InstructTune.Recipes;

/// <summary>
/// <c>itune prepare --dump N</c>: the first N examples of the mixture (stage 1 first) as JSONL, so a user can check
/// the masks: <c>input_ids</c>, <c>labels</c> (−100 where not learned), the decoded <c>text</c>, the decoded
/// <c>learned</c> part (all learned ids) and <c>learned_spans</c> (each run of consecutive learned tokens decoded).
/// </summary>
public static class PrepareDump
{
    public const string FileName = "dump.jsonl";

    public static string Write(PreparedData data, ITokenizer tokenizer, int n, string path)
    {
        using var w = new StreamWriter(path, false, new System.Text.UTF8Encoding(false));
        int written = 0;
        foreach (var stage in data.Stages)
            foreach (var e in stage)
            {
                if (written++ >= n) return path;
                w.WriteLine(JsonSerializer.Serialize(Line(e, tokenizer, data.TaskNames)));
            }
        return path;
    }

    public static Dictionary<string, object> Line(TokenizedExample e, ITokenizer tokenizer, IReadOnlyList<string> tasks)
    {
        var spans = new List<string>();
        var learned = new List<int>();
        for (int t = 0; t < e.Length; t++)
        {
            if (e.Labels[t] == TokenizedExample.IgnoreIndex) continue;
            int start = t;
            while (t < e.Length && e.Labels[t] != TokenizedExample.IgnoreIndex) t++;
            spans.Add(tokenizer.Decode(e.Ids.AsSpan(start, t - start)));
            learned.AddRange(e.Ids[start..t]);
        }
        return new Dictionary<string, object>
        {
            ["task"] = e.TaskId >= 0 && e.TaskId < tasks.Count ? tasks[e.TaskId] : "",
            ["input_ids"] = e.Ids,
            ["labels"] = e.Labels,
            ["text"] = tokenizer.Decode(e.Ids),
            ["learned"] = tokenizer.Decode(learned.ToArray()),
            ["learned_spans"] = spans,
        };
    }
}
