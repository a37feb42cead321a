using System.Text.Json;
using InstructTune.Evaluation.IFEval.Instructions;

namespace InstructTune.Evaluation.IFEval;

/// <summary>The inputs cannot be evaluated; <see cref="Problems"/> lists every problem as "file:line: message".</summary>
public sealed class IFEvalInputException(IReadOnlyList<string> problems)
    : InstructTune.Common.InputException($"{problems.Count} problem(s) in the IFEval inputs:\n  " + string.Join("\n  ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>
/// Reads <c>input_data.jsonl</c> (key, prompt, instruction_id_list, kwargs) and a responses JSONL (prompt, response)
/// and joins them by exact prompt text, as IFEval does. Unlike the official reader, it does not stop at the first
/// problem: every broken line, unknown instruction id, prompt without a response and response without a prompt
/// is collected and reported together, each with its file and line.
/// </summary>
public static class IFEvalReader
{
    /// <summary>Reads the prompts; throws <see cref="IFEvalInputException"/> listing all bad lines.</summary>
    public static List<IFEvalPrompt> ReadPrompts(string path)
    {
        var problems = new List<string>();
        var prompts = ReadPrompts(path, problems);
        if (problems.Count > 0) throw new IFEvalInputException(problems);
        return prompts;
    }

    private static List<IFEvalPrompt> ReadPrompts(string path, List<string> problems)
    {
        var prompts = new List<IFEvalPrompt>();
        foreach (var (line, root) in JsonLines(path, problems))
        {
            string where = $"{path}:{line}";
            try
            {
                long key = root.TryGetProperty("key", out var k) && k.TryGetInt64(out var kv) ? kv
                    : throw new FormatException("field 'key' must be an integer");
                var prompt = StringField(root, "prompt");
                var ids = StringList(root, "instruction_id_list");
                if (!root.TryGetProperty("kwargs", out var kw) || kw.ValueKind != JsonValueKind.Array)
                    throw new FormatException("field 'kwargs' must be a list of objects");
                var kwargs = kw.EnumerateArray().Select(e => e.Clone()).ToList();
                if (kwargs.Count != ids.Count)
                    throw new FormatException($"{ids.Count} instruction ids but {kwargs.Count} kwargs objects");
                foreach (var id in ids.Where(id => !InstructionRegistry.IsKnown(id)))
                    problems.Add($"{where}: unknown instruction id '{id}' (key {key})");
                prompts.Add(new IFEvalPrompt(key, prompt, ids, kwargs, line));
            }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            {
                problems.Add($"{where}: {e.Message}");
            }
        }
        return prompts;
    }

    /// <summary>
    /// Reads the responses and joins them to <paramref name="prompts"/>. Throws <see cref="IFEvalInputException"/>
    /// for broken lines, responses whose prompt is not in the input, and prompts without a response.
    /// A prompt answered twice keeps the last answer (as IFEval's dict does) and is reported in <paramref name="warnings"/>.
    /// </summary>
    public static Dictionary<string, string> ReadResponses(string path, IReadOnlyList<IFEvalPrompt> prompts,
        string inputPath, List<string>? warnings = null)
    {
        var problems = new List<string>();
        var known = prompts.Select(p => p.Prompt).ToHashSet(StringComparer.Ordinal);
        var responses = new Dictionary<string, string>(StringComparer.Ordinal);
        var firstLine = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (line, root) in JsonLines(path, problems))
        {
            try
            {
                var prompt = StringField(root, "prompt");
                var response = StringField(root, "response");
                if (!known.Contains(prompt))
                {
                    problems.Add($"{path}:{line}: extra prompt not in {Path.GetFileName(inputPath)}: \"{Abbrev(prompt)}\"");
                    continue;
                }
                if (firstLine.TryGetValue(prompt, out var first))
                    warnings?.Add($"{path}:{line}: prompt already answered on line {first}; the later response is used");
                else firstLine[prompt] = line;
                responses[prompt] = response;
            }
            catch (FormatException e)
            {
                problems.Add($"{path}:{line}: {e.Message}");
            }
        }
        foreach (var p in prompts.Where(p => !responses.ContainsKey(p.Prompt)))
            problems.Add($"{path}: missing response for key {p.Key} ({inputPath}:{p.Line}): \"{Abbrev(p.Prompt)}\"");
        if (problems.Count > 0) throw new IFEvalInputException(problems);
        return responses;
    }

    private static IEnumerable<(int Line, JsonElement Root)> JsonLines(string path, List<string> problems)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"file not found: {path}", path);
        int n = 0;
        foreach (var text in File.ReadLines(path))
        {
            n++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonElement root;
            try
            {
                using var doc = JsonDocument.Parse(text);
                root = doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                problems.Add($"{path}:{n}: broken JSON line ({e.Message})");
                continue;
            }
            if (root.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"{path}:{n}: expected a JSON object, got {root.ValueKind}");
                continue;
            }
            yield return (n, root);
        }
    }

    private static string StringField(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()!
            : throw new FormatException($"field '{name}' is missing or not a string");

    private static List<string> StringList(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
        && v.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String)
            ? v.EnumerateArray().Select(e => e.GetString()!).ToList()
            : throw new FormatException($"field '{name}' is missing or not a list of strings");

    private static string Abbrev(string s) => (s.Length <= 60 ? s : s[..57] + "...").Replace("\n", " ");
}
