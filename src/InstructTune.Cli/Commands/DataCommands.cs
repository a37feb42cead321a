using System.CommandLine;
using InstructTune.Data.Loading;
using InstructTune.Data.Pipeline;
using InstructTune.Data.Records;
using InstructTune.Data.TaskSuite;
using Spectre.Console;
using InstructTune.Recipes;
using InstructTune.Training.Config;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune prepare</c>: files → tokenized, cached shards with stats.json; <c>itune tasks</c>: the built-in suite as JSONL.
/// </summary>
public static class DataCommands
{
    public static IEnumerable<Command> Create()
    {
        yield return Prepare();
        yield return Tasks();
    }

    private static Command Prepare()
    {
        var config = new Option<string>("--config") { Description = "Recipe YAML (the same file `train` reads): data.*, model.tokenizer, prepare.* keys; see `itune config schema`" };
        var data = new Option<string>("--data") { Description = "Dataset file or SNI task folder (data.path)" };
        var format = new Option<string>("--format") { Description = "alpaca|dolly|sharegpt|messages|sni|gsm8k|csv|self-instruct|text (data.format)" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer folder or file (model.tokenizer)" };
        var template = new Option<string>("--template") { Description = "alpaca|chatml|llama2|llama3 or a format string with {instruction} {input} {output} (data.template)" };
        var outDir = new Option<string>("--out") { Description = "Output folder: shards, manifest.json, stats.json, rejected.jsonl (prepare.out)" };
        var maxLen = new Option<int?>("--max-seq-len") { Description = "Longest example in tokens; longer ones are truncated, input first (data.max_seq_len)" };
        var pack = new Option<bool>("--pack") { Description = "Record that training packs examples (data.pack)" };
        var skip = new Option<bool>("--skip-invalid") { Description = "Skip malformed records, written to rejected.jsonl, instead of failing (data.skip_invalid)" };
        var fields = new Option<string>("--fields") { Description = "Field renames, e.g. instruction=prompt,output=completion (data.fields)" };
        var force = new Option<bool>("--force") { Description = "Rebuild even when the cache manifest matches (prepare.force)" };
        var overrides = new Argument<string[]>("overrides") { Description = "key=value overrides, e.g. data.max_seq_len=1024 data.near_dup=0.8", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("prepare", "Load, validate, template, tokenize, mask and cache a dataset; print stats");
        foreach (var o in new Option[] { config, data, format, tokenizer, template, outDir, maxLen, pack, skip, fields, force }) command.Options.Add(o);
        command.Arguments.Add(overrides);
        command.SetAction(parse =>
        {
            try
            {
                // Flags are shorthands for keys: they apply after the file, before the explicit overrides.
                var sets = new List<string>();
                void Set(string key, string? v) { if (v != null) sets.Add($"{key}={v}"); }
                Set("data.path", parse.GetValue(data));
                Set("data.format", parse.GetValue(format));
                Set("model.tokenizer", parse.GetValue(tokenizer));
                Set("data.template", parse.GetValue(template));
                Set("prepare.out", parse.GetValue(outDir));
                Set("data.max_seq_len", parse.GetValue(maxLen)?.ToString(System.Globalization.CultureInfo.InvariantCulture));
                Set("data.fields", parse.GetValue(fields));
                if (parse.GetValue(pack)) sets.Add("data.pack=true");
                if (parse.GetValue(skip)) sets.Add("data.skip_invalid=true");
                if (parse.GetValue(force)) sets.Add("prepare.force=true");
                sets.AddRange(parse.GetValue(overrides) ?? []);
                var cfg = ConfigLoader.Load<TrainConfig>(parse.GetValue(config), sets);
                var options = PrepareRecipe.Options(cfg);
                var result = PreparePipeline.Run(options);
                PrintSummary(result, options);
                return 0;
            }
            catch (ConfigException ex)
            {
                Console.Error.WriteLine($"itune prepare: config error: {ex.Message}");
                return 2;
            }
            catch (Exception ex) when (ex is DataFormatException or ArgumentException or IOException or Tokenizers.TokenizerFormatException or InvalidDataException)
            {
                Console.Error.WriteLine($"itune prepare: {ex.Message}");
                return 1;
            }
        });
        return command;
    }

    private static void PrintSummary(PrepareResult r, PrepareOptions o)
    {
        var s = r.Stats;
        var table = new Table().Title($"itune prepare → {Markup.Escape(o.OutDir)}{(s.CacheReused ? " (cache reused)" : "")}");
        table.AddColumn("metric");
        table.AddColumn(new TableColumn("value").RightAligned());
        void Row(string k, string val) => table.AddRow(Markup.Escape(k), Markup.Escape(val));
        Row("records read", s.RecordsRead.ToString());
        Row("records kept", s.RecordsKept.ToString());
        Row("records rejected", s.RecordsRejected.ToString());
        foreach (var (reason, n) in s.RejectedByReason) Row($"  rejected: {reason}", n.ToString());
        Row("duplicates removed", s.DuplicatesRemoved.ToString());
        Row("tokens mean / p95 / max", $"{s.Tokens.Mean:F1} / {s.Tokens.P95} / {s.Tokens.Max}");
        Row("tokens total / learned", $"{s.Tokens.Total} / {s.Tokens.Learned}");
        Row("truncated", s.Truncated.ToString());
        Row("padding plain / bucketed / packed", $"{s.PaddingShare.Plain:P1} / {s.PaddingShare.Bucketed:P1} / {s.PaddingShare.Packed:P1}");
        Row("tasks", r.Manifest.Tasks.Count.ToString());
        Row("shards", r.Manifest.Shards.Count.ToString());
        Row("seconds", s.Seconds.ToString("F2"));
        AnsiConsole.Write(table);
        Console.WriteLine($"stats: {Path.Combine(o.OutDir, PreparePipeline.StatsFile)}");
        if (o.SkipInvalid && s.RecordsRejected > 0) Console.WriteLine($"rejected: {Path.Combine(o.OutDir, PreparePipeline.RejectedFile)}");
    }

    private static Command Tasks()
    {
        var outDir = new Option<string>("--out") { Description = "Output folder", Required = true };
        var seed = new Option<int>("--seed") { Description = "Generator seed", DefaultValueFactory = _ => 1234 };
        var steps = new Option<bool>("--step-by-step") { Description = "Arithmetic answers show their working" };
        var command = new Command("tasks", "Write the built-in instruction task suite as JSONL with its split files");
        command.Options.Add(outDir);
        command.Options.Add(seed);
        command.Options.Add(steps);
        command.SetAction(parse =>
        {
            var dir = parse.GetValue(outDir)!;
            var suite = TaskSuiteGenerator.Generate(new TaskSuiteOptions(Seed: parse.GetValue(seed), StepByStep: parse.GetValue(steps)));
            TaskSuiteGenerator.Write(suite, dir);
            var table = new Table().Title($"itune tasks → {Markup.Escape(dir)}");
            table.AddColumn("split");
            table.AddColumn(new TableColumn("examples").RightAligned());
            table.AddColumn(new TableColumn("tasks").RightAligned());
            foreach (var split in SuiteSplit.All)
            {
                var rows = suite.Where(x => x.Split == split).ToList();
                table.AddRow(split, rows.Count.ToString(), rows.Select(x => x.Record.Task).Distinct().Count().ToString());
            }
            table.AddRow("all (suite.jsonl)", suite.Count.ToString(), suite.Select(x => x.Record.Task).Distinct().Count().ToString());
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }
}
