using System.Text.Json;
using InstructTune.Data.Records;

namespace InstructTune.Data.TaskSuite;

/// <summary>Which evaluation a suite example belongs to.</summary>
public static class SuiteSplit
{
    public const string Train = "train";
    /// <summary>Trained families, phrasings and compositions; inputs never seen in train.</summary>
    public const string HeldOutExamples = "heldout_examples";
    /// <summary>Trained families asked with the held-out 4th phrasing.</summary>
    public const string HeldOutPhrasings = "heldout_phrasings";
    /// <summary>Multi-step compositions of trained families never composed that way in train.</summary>
    public const string HeldOutCompositions = "heldout_compositions";
    /// <summary>Families never trained on.</summary>
    public const string HeldOutFamilies = "heldout_families";

    public static IReadOnlyList<string> All { get; } = [Train, HeldOutExamples, HeldOutPhrasings, HeldOutCompositions, HeldOutFamilies];
}

/// <summary>One generated example: the record plus its cluster and split.</summary>
public sealed record SuiteExample(InstructionRecord Record, string Cluster, string Split);

/// <summary>Sizes of the generated suite (per family or per pair) and the answer style.</summary>
/// <param name="StepByStep">Arithmetic answers show the working first ("7 + 5 = 12\nAnswer: 12").</param>
public sealed record TaskSuiteOptions(int Seed = 1234, int SimplePerFamily = 150, int ConditionalPerPair = 12, int CompositionPerPair = 12,
    int HeldOutPerFamily = 20, int HeldOutPerPair = 4, bool StepByStep = false);

/// <summary>
/// The built-in task suite: verifiable instruction tasks with known answers at three complexity levels —
/// 0 simple (one family), 1 conditional ("If the word has more than 4 letters, reverse the word. Otherwise, …"),
/// 2 multi-step compositions ("First, reverse the word. Then, on the result: write the word in uppercase.").
/// Held out: 5 whole families, each family's 4th phrasing, every 4th composition pair (by a fixed order), and
/// fresh inputs of trained tasks. Seeded: the same options give the same suite, byte for byte.
/// </summary>
public static class TaskSuiteGenerator
{
    public static List<SuiteExample> Generate(TaskSuiteOptions? options = null)
    {
        var o = options ?? new TaskSuiteOptions();
        var rng = new Random(o.Seed);
        var families = TaskFamilies.All;
        var trained = families.Where(f => !f.HeldOut).ToList();
        var result = new List<SuiteExample>();
        var seen = new HashSet<(string, string)>();   // (instruction, input) already used by any split

        // Level 0: simple.
        foreach (var f in trained)
        {
            Emit(result, seen, rng, o.SimplePerFamily, SuiteSplit.Train, f.Cluster, f.Name, 0,
                r => { var x = f.Generate(r); var p = r.Next(TaskFamilies.TrainedPhrasings); return (f.Phrasings[p], x, Answer(f, x, o)); });
            Emit(result, seen, rng, o.HeldOutPerFamily, SuiteSplit.HeldOutExamples, f.Cluster, f.Name, 0,
                r => { var x = f.Generate(r); var p = r.Next(TaskFamilies.TrainedPhrasings); return (f.Phrasings[p], x, Answer(f, x, o)); });
            Emit(result, seen, rng, o.HeldOutPerFamily, SuiteSplit.HeldOutPhrasings, f.Cluster, f.Name, 0,
                r => { var x = f.Generate(r); return (f.Phrasings[TaskFamilies.TrainedPhrasings], x, Answer(f, x, o)); });
        }
        foreach (var f in families.Where(f => f.HeldOut))
            Emit(result, seen, rng, o.HeldOutPerFamily, SuiteSplit.HeldOutFamilies, f.Cluster, f.Name, 0,
                r => { var x = f.Generate(r); var p = r.Next(f.Phrasings.Length); return (f.Phrasings[p], x, Answer(f, x, o)); });

        // Level 1: conditionals over two trained families with the same input kind.
        foreach (var a in trained)
            foreach (var b in trained)
            {
                if (!TaskFamilies.CanCondition(a, b)) continue;
                var cond = TaskFamilies.Condition(a.In)!.Value;
                string Make(int pa, int pb) => $"If {cond.Text}, {a.Clause(pa)}. Otherwise, {b.Clause(pb)}.";
                var name = $"if_{a.Name}_else_{b.Name}";
                Func<Random, (string, string, string)> gen = r =>
                {
                    var x = a.Generate(r);
                    return (Make(r.Next(TaskFamilies.TrainedPhrasings), r.Next(TaskFamilies.TrainedPhrasings)), x, cond.Holds(x) ? Answer(a, x, o) : Answer(b, x, o));
                };
                Emit(result, seen, rng, o.ConditionalPerPair, SuiteSplit.Train, a.Cluster, name, 1, gen);
                Emit(result, seen, rng, o.HeldOutPerPair, SuiteSplit.HeldOutExamples, a.Cluster, name, 1, gen);
            }

        // Level 2: compositions a → b; every 4th chainable pair (in catalogue order) is held out.
        int pair = 0;
        foreach (var a in trained)
            foreach (var b in trained)
            {
                if (!TaskFamilies.Chains(a, b)) continue;
                bool heldOut = pair++ % 4 == 3;
                var name = $"{a.Name}_then_{b.Name}";
                Func<Random, (string, string, string)> gen = r =>
                {
                    var x = a.Generate(r);
                    var instruction = $"First, {a.Clause(r.Next(TaskFamilies.TrainedPhrasings))}. Then, on the result: {b.Clause(r.Next(TaskFamilies.TrainedPhrasings))}.";
                    return (instruction, x, Answer(b, a.Answer(x), o));
                };
                if (heldOut) Emit(result, seen, rng, o.HeldOutPerPair * 2, SuiteSplit.HeldOutCompositions, a.Cluster, name, 2, gen);
                else
                {
                    Emit(result, seen, rng, o.CompositionPerPair, SuiteSplit.Train, a.Cluster, name, 2, gen);
                    Emit(result, seen, rng, o.HeldOutPerPair, SuiteSplit.HeldOutExamples, a.Cluster, name, 2, gen);
                }
            }
        return result;
    }

    private static string Answer(TaskFamily f, string x, TaskSuiteOptions o)
    {
        var answer = f.Answer(x);
        if (!o.StepByStep || f.Cluster != "arithmetic") return answer;
        var working = f.Name switch
        {
            "add" => x.Replace(" and ", " + "),
            "subtract" => x.Replace(" and ", " - "),
            "multiply" => x.Replace(" and ", " * "),
            "sum_of_list" => x.Replace(", ", " + "),
            "successor" => x + " + 1",
            _ => null,
        };
        return working == null ? answer : $"{working} = {answer}\nAnswer: {answer}";
    }

    /// <summary>Draws up to n distinct (instruction, input) examples; gives up on a task after 20·n tries (small input spaces).</summary>
    private static void Emit(List<SuiteExample> into, HashSet<(string, string)> seen, Random rng, int n, string split, string cluster,
        string task, int complexity, Func<Random, (string Instruction, string Input, string Output)> gen)
    {
        for (int made = 0, tries = 0; made < n && tries < 20 * n; tries++)
        {
            var (instruction, input, output) = gen(rng);
            if (!seen.Add((instruction, input))) continue;
            into.Add(new SuiteExample(new InstructionRecord(instruction, input, output, task, new RecordSource("builtin:tasks", 0, into.Count),
                Complexity: complexity, Category: cluster), cluster, split));
            made++;
        }
    }

    /// <summary>Writes suite.jsonl (everything) and one JSONL per split; each write is atomic (temp file, rename).</summary>
    public static void Write(IReadOnlyList<SuiteExample> suite, string outDir)
    {
        Directory.CreateDirectory(outDir);
        WriteJsonl(Path.Combine(outDir, "suite.jsonl"), suite);
        foreach (var split in SuiteSplit.All)
            WriteJsonl(Path.Combine(outDir, split + ".jsonl"), suite.Where(s => s.Split == split));
    }

    private static void WriteJsonl(string path, IEnumerable<SuiteExample> rows)
    {
        var temp = path + ".tmp";
        using (var w = new StreamWriter(temp, false, new System.Text.UTF8Encoding(false)))
        {
            foreach (var s in rows)
                w.WriteLine(JsonSerializer.Serialize(new
                {
                    instruction = s.Record.Instruction,
                    input = s.Record.Input,
                    output = s.Record.Output,
                    task = s.Record.Task,
                    cluster = s.Cluster,
                    complexity = s.Record.Complexity,
                    split = s.Split,
                }));
            w.Flush();
        }
        File.Move(temp, path, overwrite: true);
    }
}
