// Self-Instruct (Wang et al. 2023) against any chat endpoint. One round:
//   1. sample prompts: per request, up to synth.prompt_machine_instructions (2) kept machine instructions plus human
//      seed instructions up to synth.prompt_instructions (8), shuffled, numbered, ending with "9." to continue;
//   2. split each answer into candidate instructions; the paper's filters (length, keywords, "Write a program",
//      punctuation / non-ASCII start), then ROUGE-L F against every pool instruction (seeds + kept) < 0.7 — candidates
//      are taken in answer order and join the pool at once, so later ones are compared with earlier ones too;
//   3. ask whether each new instruction is a classification task (yes/no);
//   4. generate instances: output-first ("Class label: …" then the input) for classification, input-first otherwise;
//      parse, drop invalid and duplicate instances, keep up to synth.max_instances; a task with none is dropped
//      (its instruction stays in the pool, as in the released code).
// Requests within a step go out concurrently; answers are used in request order, so a run is a pure function of the
// seed and the journaled answers: a killed run, rerun, replays the journal and ends with the same output.
using System.Text.Json;
using InstructTune.Common;
using InstructTune.Data.Synth;
using InstructTune.Evaluation.Complexity;

namespace InstructTune.Recipes.Synth;

/// <summary>A human-written seed task (the released seed_tasks.jsonl layout).</summary>
public sealed record SeedTask(string Id, string Instruction, IReadOnlyList<SynthInstance> Instances, bool IsClassification);

public static class SeedTasks
{
    /// <summary>Reads seed tasks: JSONL, one {"instruction", "instances": [{"input","output"}], "is_classification"?}
    /// per line. A malformed line is an error naming file and line; no tasks at all is an error.</summary>
    public static List<SeedTask> Read(string path)
    {
        if (!File.Exists(path)) throw new InputException($"{path}: seed file not found");
        var tasks = new List<SeedTask>();
        int no = 0;
        foreach (var line in File.ReadLines(path))
        {
            no++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{path}:{no}";
            JsonElement e;
            try { e = JsonDocument.Parse(line).RootElement; }
            catch (JsonException ex) { throw new InputException($"{where}: not valid JSON ({ex.Message.Split('\n')[0]})"); }
            if (e.ValueKind != JsonValueKind.Object) throw new InputException($"{where}: a seed task must be a JSON object");
            if (!e.TryGetProperty("instruction", out var ins) || ins.ValueKind != JsonValueKind.String || ins.GetString()!.Trim().Length == 0)
                throw new InputException($"{where}: \"instruction\" missing, empty or not a string");
            var instances = new List<SynthInstance>();
            if (e.TryGetProperty("instances", out var arr))
            {
                if (arr.ValueKind != JsonValueKind.Array) throw new InputException($"{where}: \"instances\" must be an array");
                int i = 0;
                foreach (var x in arr.EnumerateArray())
                {
                    if (x.ValueKind != JsonValueKind.Object || !x.TryGetProperty("output", out var o) || o.ValueKind != JsonValueKind.String)
                        throw new InputException($"{where}: instances[{i}] needs a string \"output\"");
                    var input = x.TryGetProperty("input", out var inp) && inp.ValueKind == JsonValueKind.String ? inp.GetString()! : "";
                    instances.Add(new SynthInstance(input, o.GetString()!));
                    i++;
                }
            }
            bool clf = e.TryGetProperty("is_classification", out var c) && c.ValueKind == JsonValueKind.True;
            var id = e.TryGetProperty("id", out var idEl) ? idEl.ToString() : $"seed_{no}";
            tasks.Add(new SeedTask(id, ins.GetString()!, instances, clf));
        }
        if (tasks.Count == 0) throw new InputException($"{path}: no seed tasks (the pool needs at least one instruction)");
        return tasks;
    }
}

/// <summary>What one Self-Instruct run made.</summary>
public sealed record SelfInstructResult(List<SynthRecord> Records, List<SynthRecord> Rejected, int Tasks, int Rounds);

public static class SelfInstructRecipe
{
    public const string Method = "self-instruct";

    public static SelfInstructResult Run(SynthRun run, IReadOnlyList<SeedTask> seeds, CancellationToken ct = default)
    {
        var cfg = run.Config;
        if (cfg.PromptMachineInstructions > cfg.PromptInstructions)
            throw new InputException($"synth.prompt_machine_instructions ({cfg.PromptMachineInstructions}) exceeds synth.prompt_instructions ({cfg.PromptInstructions})");
        var f = run.Funnel;
        var seedInstructions = seeds.Select(s => s.Instruction).ToList();
        var pool = seedInstructions.Select(SelfInstructRules.RougeTokens).ToList();   // seeds first, then kept machine instructions
        var poolText = new List<string>(seedInstructions);
        var machine = new List<string>();
        var records = new List<SynthRecord>();
        var rejected = new List<SynthRecord>();
        int tasks = 0, round = 0, failedRounds = 0, candidateNo = 0;
        run.Progress.WriteLine($"self-instruct: {seeds.Count} seed tasks, target {cfg.Target} tasks, {cfg.Concurrency} requests per round");

        while (tasks < cfg.Target && round < cfg.MaxRounds)
        {
            ct.ThrowIfCancellationRequested();
            round++;
            // 1. prompts
            var prompts = new List<SynthRequest>();
            for (int b = 0; b < cfg.Concurrency; b++)
            {
                var chosen = Sample(run.Rng, machine, Math.Min(cfg.PromptMachineInstructions, machine.Count));
                chosen.AddRange(Sample(run.Rng, seedInstructions, Math.Min(cfg.PromptInstructions - chosen.Count, seedInstructions.Count)));
                Shuffle(run.Rng, chosen);
                // A local model with a small context gets the first k of the shuffled list (SynthRun.Fit).
                var fitted = run.Fit("self_instruct_tasks", cfg.MaxTokens, chosen.Count, k =>
                [
                    ("tasks", string.Join("\n", chosen.Take(k).Select((s, i) => $"{i + 1}. {System.Text.RegularExpressions.Regex.Replace(s, @"\s+", " ").Trim().TrimEnd(':')}"))),
                    ("next", (k + 1).ToString()),
                ]);
                int n = fitted.Items;
                prompts.Add(run.Generate("instructions", fitted.Text, stop: ["\n\n", $"\n{n + 8}", $"{n + 8}.", $"{n + 8} ."]));
            }
            var answers = run.Endpoint.CompleteAllAsync(prompts, ct).GetAwaiter().GetResult();
            run.CheckEndpointAlive(answers, ref failedRounds);
            f.Add("requests", answers.Count);

            // 2. candidates through the filters, in answer order
            var fresh = new List<SynthRecord>();
            foreach (var a in answers)
            {
                if (!a.Ok) { f.Add("endpoint_error"); continue; }
                if (a.Truncated && cfg.DropTruncated) f.Add("truncated_answer");
                foreach (var inst in SelfInstructRules.SplitInstructions(a.Text!, a.Truncated, cfg.DropTruncated))
                {
                    f.Add("candidates");
                    var rec = new SynthRecord { Id = $"si-{++candidateNo:D6}", Instruction = inst, Method = Method, Round = round };
                    string? reason = SelfInstructRules.Reject(inst, cfg.BlockedKeywords);
                    if (reason is null)
                    {
                        var tokens = SelfInstructRules.RougeTokens(inst);
                        var (max, at) = SelfInstructRules.MaxRougeL(tokens, pool);
                        rec.Scores["rouge_l_max"] = max;
                        if (max >= cfg.RougeThreshold) { reason = "rouge_l"; rec.ParentId = at < seeds.Count ? seeds[at].Id : null; }
                        else { pool.Add(tokens); poolText.Add(inst); machine.Add(inst); }
                    }
                    if (reason is not null) { Reject(rec, reason); continue; }
                    f.Add("instructions_kept");
                    fresh.Add(rec);
                }
            }

            // 3. classification or not
            var clfAnswers = run.Endpoint.CompleteAllAsync(fresh.Select(r =>
                SynthRun.Judge("classify", run.Prompt("self_instruct_classify", SynthRun.JudgeMaxTokens, ("instruction", r.Instruction)))).ToList(), ct).GetAwaiter().GetResult();
            // 4. instances, output-first for classification tasks
            var instanceRequests = new List<SynthRequest>();
            var pending = new List<SynthRecord>();
            for (int i = 0; i < fresh.Count; i++)
            {
                if (!clfAnswers[i].Ok) { f.Add("endpoint_error"); Reject(fresh[i], "endpoint_error"); continue; }
                bool clf = SelfInstructRules.IsYes(clfAnswers[i].Text!);
                fresh[i].IsClassification = clf;
                if (clf) f.Add("classification");
                pending.Add(fresh[i]);
                instanceRequests.Add(run.Generate(clf ? "instances_output_first" : "instances_input_first",
                    run.Prompt(clf ? "self_instruct_output_first" : "self_instruct_input_first", cfg.MaxTokens, ("instruction", fresh[i].Instruction))));
            }
            var instanceAnswers = run.Endpoint.CompleteAllAsync(instanceRequests, ct).GetAwaiter().GetResult();
            for (int i = 0; i < pending.Count && tasks < cfg.Target; i++)
            {
                var task = pending[i];
                var a = instanceAnswers[i];
                if (!a.Ok) { f.Add("endpoint_error"); Reject(task, "endpoint_error"); continue; }
                var instances = task.IsClassification == true
                    ? SelfInstructRules.ParseOutputFirst(a.Text!, a.Truncated && cfg.DropTruncated)
                    : SelfInstructRules.ParseInputFirst(a.Text!, a.Truncated && cfg.DropTruncated, cfg.LenientInstances);
                if (instances.Count == 0) { Reject(task, "no_valid_instances"); continue; }
                if (instances.Count > cfg.MaxInstances) instances = Sample(run.Rng, instances, cfg.MaxInstances);
                tasks++;
                f.Add("tasks_kept");
                int k = 0;
                foreach (var x in instances)
                {
                    records.Add(new SynthRecord
                    {
                        Id = instances.Count == 1 ? task.Id : $"{task.Id}-{++k}", Instruction = task.Instruction, Input = x.Input, Output = x.Output,
                        Method = Method, Round = round, IsClassification = task.IsClassification, Scores = new(task.Scores),
                        Complexity = ComplexityName(ComplexityClassifier.Classify(task.Instruction)),
                    });
                    f.Add("instances_kept");
                }
            }
            run.Progress.WriteLine($"self-instruct round {round}: tasks {tasks}/{cfg.Target}; {f.Line()}");
        }
        if (tasks < cfg.Target)
            run.Progress.WriteLine($"self-instruct: stopped after synth.max_rounds = {cfg.MaxRounds} with {tasks} of {cfg.Target} tasks");
        return new SelfInstructResult(records, rejected, tasks, round);

        void Reject(SynthRecord rec, string reason)
        {
            rec.Reasons.Add(reason);
            rejected.Add(rec);
            f.Add("rejected_" + reason);
        }
    }

    public static string ComplexityName(ComplexityLevel level) => level switch
    {
        ComplexityLevel.Simple => "simple", ComplexityLevel.Conditional => "conditional", _ => "multi-step",
    };

    /// <summary>k distinct items drawn uniformly (partial Fisher–Yates over indices), in draw order.</summary>
    public static List<T> Sample<T>(Random rng, IReadOnlyList<T> items, int k)
    {
        var idx = Enumerable.Range(0, items.Count).ToArray();
        var picked = new List<T>(k);
        for (int i = 0; i < k; i++)
        {
            int j = i + rng.Next(idx.Length - i);
            (idx[i], idx[j]) = (idx[j], idx[i]);
            picked.Add(items[idx[i]]);
        }
        return picked;
    }

    public static void Shuffle<T>(Random rng, IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
