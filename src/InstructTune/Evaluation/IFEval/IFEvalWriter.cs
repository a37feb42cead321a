using System.Globalization;
using System.Text;
using System.Text.Json;

namespace InstructTune.Evaluation.IFEval;

/// <summary>
/// Writes IFEval's outputs: <c>eval_results_strict.jsonl</c> / <c>eval_results_loose.jsonl</c> byte-compatible with
/// the official <c>write_outputs</c> (Python <c>json.dumps</c>: ASCII escapes, ", " and ": " separators, fields in
/// <c>dir()</c> order), and <c>summary.json</c> with the four accuracies. Every file is written to a temporary name,
/// flushed and renamed.
/// </summary>
public static class IFEvalWriter
{
    public const string StrictFile = "eval_results_strict.jsonl", LooseFile = "eval_results_loose.jsonl", SummaryFile = "summary.json";

    public static void WriteAll(string dir, IReadOnlyList<IFEvalResult> strict, IReadOnlyList<IFEvalResult> loose,
        IFEvalSummary summary, IFEvalServices services)
    {
        Directory.CreateDirectory(dir);
        WriteAtomic(Path.Combine(dir, StrictFile), w => WriteResults(w, strict));
        WriteAtomic(Path.Combine(dir, LooseFile), w => WriteResults(w, loose));
        WriteAtomic(Path.Combine(dir, SummaryFile), w => w.Write(SummaryJson(summary, services)));
    }

    /// <summary>One JSON line per result, as Python's json.dumps writes the OutputExample attributes.</summary>
    public static void WriteResults(TextWriter w, IReadOnlyList<IFEvalResult> results)
    {
        foreach (var r in results)
        {
            w.Write("{\"follow_all_instructions\": ");
            w.Write(r.FollowAllInstructions ? "true" : "false");
            w.Write(", \"follow_instruction_list\": [");
            w.Write(string.Join(", ", r.FollowInstructionList.Select(f => f ? "true" : "false")));
            w.Write("], \"instruction_id_list\": [");
            w.Write(string.Join(", ", r.InstructionIds.Select(PyDumpsString)));
            w.Write("], \"prompt\": ");
            w.Write(PyDumpsString(r.Prompt));
            w.Write(", \"response\": ");
            w.Write(PyDumpsString(r.Response));
            w.Write("}\n");
        }
    }

    /// <summary>A string as Python's json.dumps (ensure_ascii=True) writes it.</summary>
    public static string PyDumpsString(string s) => Templates.Jinja.PyJson.DumpsString(s, ensureAscii: true);

    /// <summary>summary.json: both modes' prompt- and instruction-level accuracy, counts, per-instruction accuracy, and the
    /// settings that make a run reproducible (langdetect seed, rule release and its seed).</summary>
    public static string SummaryJson(IFEvalSummary summary, IFEvalServices services)
    {
        using var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            j.WriteStartObject();
            Mode(j, "strict", summary.Strict);
            Mode(j, "loose", summary.Loose);
            Seed(j, "langdetect_seed", services.Language.Seed);
            j.WriteString("rules", services.Rules == IFEvalRules.Upstream ? "upstream" : "2023");
            if (services.Rules != IFEvalRules.Upstream) Seed(j, "rules_seed", services.RuleSeed);
            j.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void Seed(Utf8JsonWriter j, string name, ulong? seed)
    {
        if (seed is { } s) j.WriteNumber(name, s);
        else j.WriteNull(name); // unseeded: every draw was random
    }

    private static void Mode(Utf8JsonWriter j, string name, IFEvalAccuracy a)
    {
        j.WriteStartObject(name);
        j.WriteNumber("prompt_level_accuracy", a.PromptLevel);
        j.WriteNumber("instruction_level_accuracy", a.InstructionLevel);
        j.WriteNumber("prompts", a.Prompts);
        j.WriteNumber("instructions", a.Instructions);
        j.WriteStartObject("by_category");
        foreach (var (k, v) in a.ByCategory) j.WriteNumber(k, v);
        j.WriteEndObject();
        j.WriteStartObject("by_instruction");
        foreach (var (k, v) in a.ByInstruction) j.WriteNumber(k, v);
        j.WriteEndObject();
        j.WriteEndObject();
    }

    /// <summary>The four headline accuracies as a small table (percent, 2 decimals).</summary>
    public static string Table(IFEvalSummary s)
    {
        var sb = new StringBuilder();
        sb.AppendLine("mode     prompt-level  instruction-level");
        sb.AppendLine(FormattableString.Invariant($"strict   {s.Strict.PromptLevel * 100,11:F2}%  {s.Strict.InstructionLevel * 100,16:F2}%"));
        sb.AppendLine(FormattableString.Invariant($"loose    {s.Loose.PromptLevel * 100,11:F2}%  {s.Loose.InstructionLevel * 100,16:F2}%"));
        sb.Append(FormattableString.Invariant($"({s.Strict.Prompts} prompts, {s.Strict.Instructions} instructions)"));
        return sb.ToString();
    }

    private static void WriteAtomic(string path, Action<TextWriter> write)
    {
        var tmp = path + ".tmp-" + Environment.ProcessId;
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        using (var w = new StreamWriter(fs, new UTF8Encoding(false)) { NewLine = "\n" })
        {
            write(w);
            w.Flush();
            fs.Flush(true);
        }
        File.Move(tmp, path, overwrite: true);
    }
}
