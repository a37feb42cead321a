using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using InstructTune.Models;
using InstructTune.Reports;

namespace InstructTune.Recipes.Quickstart;

/// <summary>The quickstart's two deliverables: results.json (the issue's keys + context) and report.html.</summary>
public static class QuickstartOutputs
{
    /// <summary>"heldout_examples" → "em_heldout_examples".</summary>
    public static string Key(string split) => "em_" + split;

    /// <summary>Exact match on the held-out examples of single-family (level 0) tasks only.</summary>
    public static double SimpleExactMatch(QuickstartScores s)
    {
        var simple = s.Samples.Where(x => x.Split == Data.TaskSuite.SuiteSplit.HeldOutExamples && QuickstartData.FamiliesOf(x.Task).Length == 1).ToList();
        return simple.Count == 0 ? 0 : simple.Count(x => x.Correct) / (double)simple.Count;
    }

    public static void WriteResults(QuickstartResult r, QuickstartOptions o, LlamaConfig model, string path)
    {
        JsonObject Scores(QuickstartScores s)
        {
            var j = new JsonObject();
            foreach (var split in QuickstartData.EvalSplits) j[Key(split)] = Math.Round(s.ExactMatch[split], 4);
            return j;
        }
        var json = new JsonObject
        {
            ["minutes"] = Math.Round(r.Minutes, 3),
            ["before"] = Scores(r.Before),
            ["after"] = Scores(r.After),
            ["detail"] = new JsonObject
            {
                ["before_em_heldout_examples_simple"] = Math.Round(SimpleExactMatch(r.Before), 4),
                ["after_em_heldout_examples_simple"] = Math.Round(SimpleExactMatch(r.After), 4),
            },
            ["seconds"] = new JsonObject(r.StageSeconds.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["examples"] = new JsonObject(r.SplitSizes.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["families"] = new JsonArray(QuickstartData.Families.Select(f => (JsonNode?)f).ToArray()),
            ["pretrain_final_loss"] = r.PretrainCurve.Count > 0 ? Math.Round(r.PretrainCurve[^1].Loss, 4) : null,
            ["tune_final_loss"] = r.TuneCurve.Count > 0 ? Math.Round(r.TuneCurve[^1].Loss, 4) : null,
            ["model"] = new JsonObject
            {
                ["vocab_size"] = model.VocabSize, ["hidden_size"] = model.HiddenSize, ["num_hidden_layers"] = model.NumHiddenLayers,
                ["num_attention_heads"] = model.NumAttentionHeads, ["intermediate_size"] = model.IntermediateSize,
            },
            ["options"] = JsonSerializer.SerializeToNode(o),
            ["machine"] = new JsonObject { ["processors"] = Environment.ProcessorCount, ["os"] = Environment.OSVersion.ToString() },
        };
        AtomicFile.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Every scored generation, before and after, one JSON object per line (samples.jsonl).</summary>
    public static void WriteSamples(QuickstartResult r, string path)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var (phase, scores) in new[] { ("before", r.Before), ("after", r.After) })
            foreach (var s in scores.Samples)
                sb.AppendLine(JsonSerializer.Serialize(new { phase, split = s.Split, task = s.Task, instruction = s.Instruction, input = s.Input,
                    expected = s.Expected, generated = s.Generated, correct = s.Correct }));
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    public static void WriteReport(QuickstartResult r, QuickstartOptions o, string path)
    {
        string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
        var report = new Report("InstructTune quickstart");
        report.Section("Summary").Paragraph(
            $"Built-in task suite (seed {o.Seed}), families: {string.Join(", ", QuickstartData.Families)}. A {o.Layers}-layer, hidden-{o.Hidden} " +
            $"Llama was pre-trained for {o.PretrainSteps} steps on plain sentences stating the suite's facts, then LoRA-tuned (r={o.LoraRank}, " +
            $"alpha={o.LoraAlpha}) for {o.TuneSteps} steps on the instruction data with response-only loss. Exact match, greedy decoding. " +
            $"Total time {r.Minutes:F2} minutes on {Environment.ProcessorCount} cores.");
        report.Section("Exact match before and after tuning").Table(
            ["split", "examples", "before", "after"],
            QuickstartData.EvalSplits.Select(s => (IReadOnlyList<string>)[s, r.SplitSizes[s].ToString(CultureInfo.InvariantCulture),
                F(r.Before.ExactMatch[s]), F(r.After.ExactMatch[s])]));
        report.Section("Loss curves").Line(new LineChart("Training loss", "step", "loss",
        [
            new Series("pre-training (LM loss, all tokens)", r.PretrainCurve.Select(p => ((double)p.Step, p.Loss)).ToList()),
            new Series("LoRA tuning (response tokens)", r.TuneCurve.Select(p => ((double)p.Step, p.Loss)).ToList()),
        ]));
        report.Section("Stage times (seconds)").Table(["stage", "seconds"],
            r.StageSeconds.Select(kv => (IReadOnlyList<string>)[kv.Key, kv.Value.ToString("F1", CultureInfo.InvariantCulture)]));
        var samples = QuickstartData.EvalSplits.SelectMany(s => r.After.Samples.Where(x => x.Split == s).Take(4)).ToList();
        report.Section("Sample generations").Table(["split", "task", "instruction", "input", "expected", "before", "after"],
            samples.Select(a =>
            {
                var b = r.Before.Samples.First(x => x.Split == a.Split && x.Instruction == a.Instruction && x.Input == a.Input);
                return (IReadOnlyList<string>)[a.Split, a.Task, a.Instruction, a.Input, a.Expected, b.Generated, a.Generated + (a.Correct ? " ✓" : " ✗")];
            }));
        report.WriteHtml(path);
    }
}
