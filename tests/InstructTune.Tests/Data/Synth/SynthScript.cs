// The scripted endpoint of the data-generation tests: answers are a function of the prompt (the first time a
// task-list prompt is seen it gets the next scripted answer, and keeps it), so any run order gives the same answers.
using System.Collections.Concurrent;
using System.Text.Json;
using InstructTune.Tests.Evaluation.Judge;

namespace InstructTune.Tests.Data.Synth;

internal sealed class SynthScript
{
    private readonly List<(string Text, bool Truncated)> answers;
    private readonly ConcurrentDictionary<string, int> firstSeen = new();
    private int next = -1;
    /// <summary>Instructions whose classification request fails with this status (per-item failure tests).</summary>
    public HashSet<string> FailClassify { get; } = new(StringComparer.OrdinalIgnoreCase);

    public SynthScript(string answersFile)
    {
        answers = JsonDocument.Parse(File.ReadAllText(answersFile)).RootElement.EnumerateArray()
            .Select(a => (a.GetProperty("text").GetString()!, a.TryGetProperty("truncated", out var t) && t.GetBoolean())).ToList();
    }

    public static string TaskOf(string prompt)
    {
        int at = prompt.LastIndexOf("\nTask: ", StringComparison.Ordinal);
        return prompt[(at + 7)..].Split('\n')[0].Trim();
    }

    public ScriptedReply? Answer(string prompt)
    {
        if (prompt.Contains("Continue the list", StringComparison.Ordinal))
        {
            int k = firstSeen.GetOrAdd(prompt, _ => Interlocked.Increment(ref next));
            return k < answers.Count ? new ScriptedReply(answers[k].Text, answers[k].Truncated ? "length" : "stop") : new ScriptedReply("");
        }
        if (prompt.Contains("Decide whether a task is a classification task", StringComparison.Ordinal))
        {
            var task = TaskOf(prompt);
            if (FailClassify.Contains(task)) return new ScriptedReply(null, Status: 500);
            return new ScriptedReply(task.StartsWith("Classify", StringComparison.OrdinalIgnoreCase) ? "Yes" : "No");
        }
        if (prompt.Contains("For each possible class label", StringComparison.Ordinal))
            return new ScriptedReply("Class label: Positive\nInput: I loved every minute of it.\nClass label: Negative\nInput: A waste of an evening.");
        if (prompt.Contains("Write examples of the task below", StringComparison.Ordinal))
            return TaskOf(prompt).Contains("poem", StringComparison.OrdinalIgnoreCase)
                ? new ScriptedReply("I am not able to help with that.")
                : new ScriptedReply("Example 1\nInput: first input\nOutput: first output\nExample 2\nInput: second input\nOutput: second output");
        return null;
    }
}
