// itune synth: instruction data generation against any chat endpoint (issue 18). Settings come from the `synth:`
// section of a config file (--config, key=value overrides) and from options, options winning. The pipelines live in
// src/InstructTune/Recipes/Synth, their filters and the journaled endpoint in src/InstructTune/Data/Synth.
using System.CommandLine;
using System.Text.Json.Nodes;
using InstructTune.Common;
using InstructTune.Recipes.Synth;
using InstructTune.Training.Config;

namespace InstructTune.Cli.Commands;

public static class SynthCommands
{
    public static Command Create()
    {
        var synth = new Command("synth", "Generate instruction data through a chat endpoint: self-instruct, evol-instruct, refine (quality control), review");
        synth.Subcommands.Add(SelfInstruct());
        synth.Subcommands.Add(EvolInstruct());
        synth.Subcommands.Add(Refine());
        synth.Subcommands.Add(Review());
        return synth;
    }

    private sealed record Common(Option<string?> Config, Argument<string[]> Overrides, Option<string> Out, Option<string?> Endpoint,
        Option<string?> Model, Option<int?> Concurrency, Option<int?> Seed);

    private static Common AddCommon(Command cmd)
    {
        var c = new Common(
            new Option<string?>("--config") { Description = "YAML config whose synth: section to use" },
            new Argument<string[]>("overrides") { Description = "key=value overrides, e.g. synth.rouge_threshold=0.6", Arity = ArgumentArity.ZeroOrMore },
            new Option<string>("--out") { Description = "run folder: journal.jsonl, data.jsonl, review.jsonl, rejected.jsonl, report.json/html; rerun to resume", Required = true },
            new Option<string?>("--endpoint") { Description = "http(s)://HOST/v1 (OpenAI-compatible) or local:MODEL_DIR[+ADAPTER_DIR] (synth.endpoint)" },
            new Option<string?>("--model") { Description = "model name for a remote endpoint (synth.model); the key comes from synth.api_key_env (OPENAI_API_KEY)" },
            new Option<int?>("--concurrency") { Description = "requests in flight (synth.concurrency, default 4)" },
            new Option<int?>("--seed") { Description = "seed of every sampling decision (synth.seed, default 42)" });
        cmd.Options.Add(c.Config); cmd.Arguments.Add(c.Overrides); cmd.Options.Add(c.Out); cmd.Options.Add(c.Endpoint);
        cmd.Options.Add(c.Model); cmd.Options.Add(c.Concurrency); cmd.Options.Add(c.Seed);
        return c;
    }

    private static SynthSection Section(ParseResult p, Common c)
    {
        var cfg = p.GetValue(c.Config) is not null || p.GetValue(c.Overrides) is { Length: > 0 }
            ? ConfigLoader.Load<TrainConfig>(p.GetValue(c.Config), p.GetValue(c.Overrides)) : new TrainConfig();
        var s = cfg.Synth;
        if (p.GetValue(c.Endpoint) is { } e) s.Endpoint = e;
        if (p.GetValue(c.Model) is { } m) s.Model = m;
        if (p.GetValue(c.Concurrency) is { } n) s.Concurrency = n >= 1 ? n : throw new ArgumentException("--concurrency: must be at least 1");
        if (p.GetValue(c.Seed) is { } seed) s.Seed = seed;
        return s;
    }

    /// <summary>Ctrl-C stops the run between requests; what completed is in the journal and a rerun resumes.</summary>
    private static int WithCancel(Func<CancellationToken, int> body)
    {
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler handler = (_, e) => { e.Cancel = true; cts.Cancel(); };
        Console.CancelKeyPress += handler;
        try { return body(cts.Token); }
        finally { Console.CancelKeyPress -= handler; }
    }

    private static Command SelfInstruct()
    {
        var cmd = new Command("self-instruct", "Self-Instruct: seed pool -> new instructions (ROUGE-L < 0.7, keyword/length filters) -> classification? -> instances");
        var c = AddCommon(cmd);
        var seeds = new Option<string>("--seeds") { Description = "seed tasks JSONL ({instruction, instances[{input, output}], is_classification}), e.g. the released seed_tasks.jsonl", Required = true };
        var target = new Option<int?>("--target") { Description = "tasks to keep (synth.target, default 100)" };
        cmd.Options.Add(seeds); cmd.Options.Add(target);
        cmd.SetAction(p => WithCancel(ct =>
        {
            var s = Section(p, c);
            if (p.GetValue(target) is { } t) s.Target = t >= 1 ? t : throw new ArgumentException("--target: must be at least 1");
            var seedTasks = SeedTasks.Read(p.GetValue(seeds)!);
            using var run = new SynthRun(s, p.GetValue(c.Out)!, Console.Error);
            var result = SelfInstructRecipe.Run(run, seedTasks, ct);
            var json = SynthPipeline.Finish(run, SelfInstructRecipe.Method, result.Records, result.Rejected, ct);
            Console.WriteLine($"self-instruct: {result.Tasks} tasks, {json["accepted"]} examples accepted, {json["flagged"]} flagged, " +
                              $"{json["rejected"]} rejected -> {Path.Combine(run.OutDir, "data.jsonl")} (report: {Path.Combine(run.OutDir, "report.html")})");
            return ExitCode(run, json);
        }));
        return cmd;
    }

    /// <summary>0 when the run accepted something and every request was answered; 1 (with a line saying why) when some
    /// requests failed (each is in journal.jsonl and rejected.jsonl) or nothing was accepted: never a silent success.</summary>
    private static int ExitCode(SynthRun run, JsonObject report)
    {
        long failed = run.Endpoint.Totals().Failed;
        if (failed > 0) Console.Error.WriteLine($"synth: {failed} request(s) failed (errors in {Path.Combine(run.OutDir, "journal.jsonl")}); exit code 1");
        bool none = report["accepted"]!.GetValue<int>() == 0 && report["flagged"]!.GetValue<int>() == 0;
        if (none) Console.Error.WriteLine($"synth: nothing was accepted or flagged (reasons in {Path.Combine(run.OutDir, "rejected.jsonl")}); exit code 1");
        return failed > 0 || none ? 1 : 0;
    }

    private static Command EvolInstruct()
    {
        var cmd = new Command("evol-instruct", "Evol-Instruct: in-depth (constraints, deepening, concretizing, reasoning, complicated input) and in-breadth evolution with the elimination rules");
        var c = AddCommon(cmd);
        var data = new Option<string>("--data") { Description = "instructions to evolve: JSONL or JSON array of {instruction, input?, output?, id?} (e.g. a self-instruct data.jsonl)", Required = true };
        var rounds = new Option<int?>("--rounds") { Description = "evolution rounds (synth.evol_rounds, default 4)" };
        cmd.Options.Add(data); cmd.Options.Add(rounds);
        cmd.SetAction(p => WithCancel(ct =>
        {
            var s = Section(p, c);
            if (p.GetValue(rounds) is { } k) s.EvolRounds = k >= 1 ? k : throw new ArgumentException("--rounds: must be at least 1");
            var records = SynthData.Read(p.GetValue(data)!, requireOutput: false);
            using var run = new SynthRun(s, p.GetValue(c.Out)!, Console.Error);
            var result = EvolInstructRecipe.Run(run, records, run.Embedder, ct);
            var json = SynthPipeline.Finish(run, EvolInstructRecipe.Method, result.Evolved, result.Eliminated, ct,
                new JsonObject { ["topic_coverage"] = result.Coverage });
            Console.WriteLine($"evol-instruct: {result.Evolved.Count} evolved, {result.Eliminated.Count} eliminated; {json["accepted"]} accepted, " +
                              $"{json["flagged"]} flagged -> {Path.Combine(run.OutDir, "data.jsonl")} (report: {Path.Combine(run.OutDir, "report.html")})");
            return ExitCode(run, json);
        }));
        return cmd;
    }

    private static Command Refine()
    {
        var cmd = new Command("refine", "Quality control: coherence, task alignment (judge), contradiction, format, reference similarity, complexity balance -> accept / review / reject");
        var c = AddCommon(cmd);
        var data = new Option<string>("--data") { Description = "records to check: JSONL or JSON array of {instruction, input?, output, id?}", Required = true };
        cmd.Options.Add(data);
        cmd.SetAction(p => WithCancel(ct =>
        {
            var s = Section(p, c);
            var records = SynthData.Read(p.GetValue(data)!, requireOutput: true);
            using var run = new SynthRun(s, p.GetValue(c.Out)!, Console.Error);
            var r = RefineRecipe.Run(run, records, ct);
            var json = SynthPipeline.Write(run, "refine", r.Accepted, r.Flagged, r.Rejected);
            Console.WriteLine($"refine: {json["accepted"]} accepted, {json["flagged"]} flagged for review, {json["rejected"]} rejected -> {run.OutDir}");
            return ExitCode(run, json);
        }));
        return cmd;
    }

    private static Command Review()
    {
        var cmd = new Command("review", "Accept or reject the items a synth run flagged (review.jsonl), in the terminal; decisions go to review_decisions.jsonl and data.jsonl / rejected.jsonl");
        var dir = new Option<string>("--run") { Description = "the synth run folder (holds review.jsonl)", Required = true };
        var all = new Option<string?>("--all") { Description = "accept or reject every remaining item without asking" };
        cmd.Options.Add(dir); cmd.Options.Add(all);
        cmd.SetAction(p =>
        {
            var folder = p.GetValue(dir)!;
            var mode = p.GetValue(all);
            if (mode is not (null or "accept" or "reject")) throw new ArgumentException($"--all: \"{mode}\" is not accept or reject");
            var summary = SynthReview.Run(folder, Console.In, Spectre.Console.AnsiConsole.Console, mode);
            Console.WriteLine(summary);
            return 0;
        });
        return cmd;
    }
}
