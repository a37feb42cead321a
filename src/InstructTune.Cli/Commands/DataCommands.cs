using System.CommandLine;
using InstructTune.Data.Loading;
using InstructTune.Data.Pipeline;
using InstructTune.Data.Records;
using InstructTune.Data.TaskSuite;
using Spectre.Console;
using YamlDotNet.RepresentationModel;

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
        var config = new Option<string>("--config") { Description = "YAML file with the keys below (data, format, tokenizer, template, out, max_seq_len, pack, skip_invalid, fields, task, near_dup, train_on_inputs, dedup)" };
        var data = new Option<string>("--data") { Description = "Dataset file (or SNI task folder)" };
        var format = new Option<string>("--format") { Description = "alpaca|dolly|sharegpt|messages|sni|gsm8k|csv|self-instruct|text" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer folder or file (tokenizer.json / tokenizer.model)" };
        var template = new Option<string>("--template") { Description = "alpaca|chatml|llama2|llama3 or a format string with {instruction} {input} {output}" };
        var outDir = new Option<string>("--out") { Description = "Output folder (shards, manifest.json, stats.json, rejected.jsonl)" };
        var maxLen = new Option<int?>("--max-seq-len") { Description = "Longest example in tokens (default 2048); longer ones are truncated, input first" };
        var pack = new Option<bool>("--pack") { Description = "Record that training packs examples (padding estimates are always printed)" };
        var skip = new Option<bool>("--skip-invalid") { Description = "Skip malformed records (written to rejected.jsonl) instead of failing" };
        var fields = new Option<string>("--fields") { Description = "Field renames, e.g. instruction=prompt,output=completion" };
        var force = new Option<bool>("--force") { Description = "Rebuild even when the cache manifest matches" };
        var command = new Command("prepare", "Load, validate, template, tokenize, mask and cache a dataset; print stats");
        foreach (var o in new Option[] { config, data, format, tokenizer, template, outDir, maxLen, pack, skip, fields, force }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            {
                var values = new Dictionary<string, string>(StringComparer.Ordinal);
                if (parse.GetValue(config) is { } cfg) ReadYaml(cfg, values);
                void Set(string key, string? v) { if (v != null) values[key] = v; }
                Set("data", parse.GetValue(data));
                Set("format", parse.GetValue(format));
                Set("tokenizer", parse.GetValue(tokenizer));
                Set("template", parse.GetValue(template));
                Set("out", parse.GetValue(outDir));
                Set("max_seq_len", parse.GetValue(maxLen)?.ToString());
                Set("fields", parse.GetValue(fields));
                if (parse.GetValue(pack)) values["pack"] = "true";
                if (parse.GetValue(skip)) values["skip_invalid"] = "true";
                if (parse.GetValue(force)) values["force"] = "true";
                var options = ToOptions(values);
                var result = PreparePipeline.Run(options);
                PrintSummary(result, options);
                return 0;
            }
        });
        return command;
    }

    private static readonly string[] Keys =
        ["data", "format", "tokenizer", "template", "out", "max_seq_len", "pack", "skip_invalid", "fields", "task", "near_dup", "train_on_inputs", "dedup", "batch_size", "force"];

    private static void ReadYaml(string path, Dictionary<string, string> into)
    {
        if (!File.Exists(path)) throw new ArgumentException($"{path}: config file not found");
        var text = InstructTune.Training.Config.YamlDepthGuard.ReadFile(path);
        var yaml = new YamlStream();
        yaml.Load(new StringReader(text));
        if (yaml.Documents.Count == 0) return;
        if (yaml.Documents[0].RootNode is not YamlMappingNode map) throw new ArgumentException($"{path}: the config must be a mapping of key: value");
        foreach (var (k, v) in map.Children)
        {
            var key = ((YamlScalarNode)k).Value!;
            if (!Keys.Contains(key)) throw new ArgumentException($"{path}:{k.Start.Line}: unknown key '{key}' (known: {string.Join(", ", Keys)})");
            if (v is not YamlScalarNode scalar) throw new ArgumentException($"{path}:{v.Start.Line}: key '{key}' must be a single value");
            into[key] = scalar.Value ?? "";
        }
    }

    private static PrepareOptions ToOptions(Dictionary<string, string> v)
    {
        string Need(string key) => v.TryGetValue(key, out var s) && s.Length > 0 ? s : throw new ArgumentException($"missing '{key}' (--{key.Replace('_', '-')} or in --config)");
        bool Flag(string key, bool dflt = false) => v.TryGetValue(key, out var s) ? bool.TryParse(s, out var b) ? b : throw new ArgumentException($"'{key}' must be true or false, got '{s}'") : dflt;
        int Int(string key, int dflt) => v.TryGetValue(key, out var s) ? int.TryParse(s, out var n) && n >= 0 ? n : throw new ArgumentException($"'{key}' must be a non-negative integer, got '{s}'") : dflt;
        double Num(string key) => v.TryGetValue(key, out var s) ? double.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out var d) ? d : throw new ArgumentException($"'{key}' must be a number, got '{s}'") : 0;
        var source = new DataSource(Need("data"), DataFormats.Parse(Need("format")), v.GetValueOrDefault("fields"), v.GetValueOrDefault("task"));
        return new PrepareOptions([source], Need("tokenizer"), Need("template"), Need("out"), Int("max_seq_len", 2048), Flag("pack"),
            Flag("skip_invalid"), Flag("train_on_inputs"), Flag("dedup", true), Num("near_dup"), Int("batch_size", 8), Flag("force"));
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
