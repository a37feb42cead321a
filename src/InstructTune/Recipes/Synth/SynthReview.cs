// `itune synth review --run DIR`: a person decides the items quality control flagged. Each undecided item of
// review.jsonl is shown (Spectre.Console panel: instruction, input, output, reasons, scores) and answered with a line:
// a = accept, r = reject, s = skip (decide later), q = quit. Every decision is appended to review_decisions.jsonl at
// once (so quitting or a crash loses nothing), then data.jsonl / rejected.jsonl / review.jsonl are rewritten
// atomically: accepted items join data.jsonl, rejected ones rejected.jsonl (reason review_rejected), the rest stay.
// A rerun of the pipeline in the same folder applies the same decisions (SynthPipeline.Write).
using System.Text.Json;
using InstructTune.Common;
using Spectre.Console;

namespace InstructTune.Recipes.Synth;

public static class SynthReview
{
    public static string Run(string dir, TextReader input, IAnsiConsole console, string? all = null)
    {
        var reviewPath = Path.Combine(dir, "review.jsonl");
        if (!File.Exists(reviewPath)) throw new InputException($"{reviewPath}: not found (is {dir} a synth run folder?)");
        var flagged = ReadJsonl(reviewPath);
        var decisionsPath = Path.Combine(dir, ReviewDecisions.FileName);
        var decided = ReviewDecisions.Read(decisionsPath);
        int accepted = 0, rejected = 0, skipped = 0, n = 0;
        foreach (var r in flagged)
        {
            n++;
            if (decided.ContainsKey(r.Id)) continue;
            string? choice = all;
            if (choice is null)
            {
                var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
                grid.AddRow(new Markup("[bold]instruction[/]"), new Text(r.Instruction));
                if (r.Input.Length > 0) grid.AddRow(new Markup("[bold]input[/]"), new Text(r.Input));
                grid.AddRow(new Markup("[bold]output[/]"), new Text(r.Output));
                grid.AddRow(new Markup("[bold]flagged for[/]"), new Text(string.Join(", ", r.Reasons)));
                grid.AddRow(new Markup("[bold]scores[/]"), new Text(string.Join(", ", r.Scores.Select(s => $"{s.Key} {s.Value:0.###}"))));
                console.Write(new Panel(grid).Header($"{n}/{flagged.Count}  {r.Id}"));
                console.Markup("[bold]a[/]ccept / [bold]r[/]eject / [bold]s[/]kip / [bold]q[/]uit: ");
                var line = input.ReadLine();
                if (line is null) break;
                choice = line.Trim().ToLowerInvariant() switch
                {
                    "a" or "accept" => "accept", "r" or "reject" => "reject", "q" or "quit" => "quit", _ => "skip",
                };
                if (choice == "quit") break;
            }
            if (choice == "skip") { skipped++; continue; }
            ReviewDecisions.Append(decisionsPath, r.Id, choice);
            decided[r.Id] = choice;
            if (choice == "accept") accepted++; else rejected++;
        }

        // Apply every decision on file to the three outputs.
        var dataPath = Path.Combine(dir, "data.jsonl");
        var rejectedPath = Path.Combine(dir, "rejected.jsonl");
        var data = File.Exists(dataPath) ? ReadJsonl(dataPath) : [];
        var rejects = File.Exists(rejectedPath) ? ReadJsonl(rejectedPath) : [];
        var remaining = new List<SynthRecord>();
        foreach (var r in flagged)
        {
            if (!decided.TryGetValue(r.Id, out var d)) { remaining.Add(r); continue; }
            if (d == "accept") { if (data.All(x => x.Id != r.Id)) data.Add(r); }
            else if (rejects.All(x => x.Id != r.Id)) { r.Reasons.Insert(0, "review_rejected"); rejects.Add(r); }
        }
        SynthRun.WriteJsonl(dataPath, data);
        SynthRun.WriteJsonl(rejectedPath, rejects);
        SynthRun.WriteJsonl(reviewPath, remaining);
        return $"review: {accepted} accepted, {rejected} rejected, {skipped} skipped now; {remaining.Count} still to review; " +
               $"data.jsonl has {data.Count} records";
    }

    private static List<SynthRecord> ReadJsonl(string path)
    {
        var list = new List<SynthRecord>();
        int no = 0;
        foreach (var line in File.ReadLines(path))
        {
            no++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try { list.Add(SynthRecord.FromJson(JsonDocument.Parse(line).RootElement, $"{path}:{no}")); }
            catch (JsonException ex) { throw new InputException($"{path}:{no}: not valid JSON ({ex.Message.Split('\n')[0]})"); }
        }
        return list;
    }
}
