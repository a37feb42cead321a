using System.CommandLine;
using InstructTune.Data.Loading;
using InstructTune.Data.Pipeline;
using InstructTune.Data.Records;
using InstructTune.Data.TaskSuite;
using InstructTune.Recipes;
using InstructTune.Training.Config;
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
        var config = new Option<string>("--config") { Description = "Recipe YAML (the train config: model.tokenizer or model.path, and the data section: data.path or data.datasets, template, mixing, augment, quality, …); a flat file with the legacy keys below also works" };
        var data = new Option<string>("--data") { Description = "Dataset file (or SNI task folder); same as data.path=" };
        var format = new Option<string>("--format") { Description = "alpaca|dolly|sharegpt|messages|sni|gsm8k|csv|parquet|self-instruct|text; same as data.format=" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "Tokenizer folder or file (tokenizer.json / tokenizer.model); same as model.tokenizer=" };
        var template = new Option<string>("--template") { Description = "alpaca|chatml|llama2|llama3, chat (the tokenizer's own Jinja chat template), a .jinja file, or a format string with {instruction} {input} {output}; same as data.template=" };
        var outDir = new Option<string>("--out") { Description = "Output folder (shards, manifest.json, stats.json, prepared.json, data_report.json, rejected.jsonl, review.jsonl); train takes it as data.path" };
        var maxLen = new Option<int?>("--max-seq-len") { Description = "Longest example in tokens (default 2048 with flags, data.max_seq_len with a recipe); data.too_long decides what happens to longer ones" };
        var pack = new Option<bool>("--pack") { Description = "Record that training packs examples (padding estimates are always printed)" };
        var skip = new Option<bool>("--skip-invalid") { Description = "Skip malformed records (written to rejected.jsonl) instead of failing; same as data.skip_invalid=true" };
        var fields = new Option<string>("--fields") { Description = "Field renames, e.g. instruction=prompt,output=completion" };
        var force = new Option<bool>("--force") { Description = "Rebuild even when the cache manifest matches" };
        var dump = new Option<int>("--dump") { Description = "Write the first N examples of the mixture to OUT/dump.jsonl (input_ids, labels, text, learned text) to check the masks" };
        var overrides = new Argument<string[]>("overrides") { Description = "key=value recipe overrides, e.g. data.template=chat data.train_on=last_assistant", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("prepare", "Load, validate, augment, filter, template, tokenize, mask and cache the recipe's datasets; print the stats train prints");
        foreach (var o in new Option[] { config, data, format, tokenizer, template, outDir, maxLen, pack, skip, fields, force, dump }) command.Options.Add(o);
        command.Arguments.Add(overrides);
        command.SetAction(parse =>
        {
            {
                var (recipe, outPath) = ToRecipe(parse.GetValue(config), parse.GetValue(overrides) ?? [], parse.GetValue(outDir), new Dictionary<string, string?>
                {
                    ["data"] = parse.GetValue(data), ["format"] = parse.GetValue(format), ["tokenizer"] = parse.GetValue(tokenizer),
                    ["template"] = parse.GetValue(template), ["max_seq_len"] = parse.GetValue(maxLen)?.ToString(), ["fields"] = parse.GetValue(fields),
                    ["pack"] = parse.GetValue(pack) ? "true" : null, ["skip_invalid"] = parse.GetValue(skip) ? "true" : null,
                });
                if (recipe.Data.Datasets.Count > 0 || !Directory.Exists(recipe.Data.Path)) PrepareRecipe.Resolve(recipe.Data);   // data errors before tokenizer errors
                var tokPath = !string.IsNullOrEmpty(recipe.Model.Tokenizer) ? recipe.Model.Tokenizer : !string.IsNullOrEmpty(recipe.Model.Path) ? recipe.Model.Path
                    : throw new ConfigException("model.tokenizer (or model.path, or --tokenizer) is required");
                if (!File.Exists(tokPath) && !Directory.Exists(tokPath)) throw new ConfigException($"model.tokenizer: '{tokPath}' does not exist");
                Tokenizers.ITokenizer tok = Tokenizers.TokenizerLoader.Load(tokPath);
                // model.instruction_aware.marker_tokens: the data is tokenized with the markers, as training does.
                int modelVocab = !string.IsNullOrEmpty(recipe.Model.Path) && File.Exists(Path.Combine(recipe.Model.Path, "config.json")) ? Models.LlamaConfig.Load(recipe.Model.Path).VocabSize : 0;
                if (Models.InstructionAware.MarkerTokens.FromConfig(recipe, tok, tokPath, modelVocab) is { } markers) tok = markers.Tokenizer;
                var prepared = PrepareRecipe.Run(recipe, tok, tokPath, outPath, parse.GetValue(force));
                PrintSummary(prepared, outPath, recipe.Data.SkipInvalid, recipe.Data.MaxSeqLen);
                if (parse.GetValue(dump) is > 0 and var n)
                    Console.WriteLine($"dump: {PrepareDump.Write(prepared, tok, n, Path.Combine(outPath, PrepareDump.FileName))}");
                return 0;
            }
        });
        return command;
    }

    private static readonly string[] LegacyKeys =
        ["data", "format", "tokenizer", "template", "out", "max_seq_len", "pack", "skip_invalid", "fields", "task", "near_dup", "train_on_inputs", "dedup", "batch_size", "force"];

    /// <summary>
    /// The recipe prepare runs: a train-config YAML (sections model/data/…) with key=value overrides, or the legacy flat
    /// keys and flags, translated into the same recipe keys so both go through <see cref="PrepareRecipe"/>.
    /// </summary>
    private static (TrainConfig Config, string OutDir) ToRecipe(string? configPath, string[] overrides, string? outFlag, Dictionary<string, string?> flags)
    {
        var flat = new Dictionary<string, string>(StringComparer.Ordinal);
        bool recipeFile = false;
        if (configPath != null)
        {
            if (!File.Exists(configPath)) throw new ArgumentException($"{configPath}: config file not found");
            var yaml = new YamlStream();
            yaml.Load(new StringReader(InstructTune.Training.Config.YamlDepthGuard.ReadFile(configPath)));
            if (yaml.Documents.Count > 0 && yaml.Documents[0].RootNode is YamlMappingNode map)
            {
                recipeFile = map.Children.Any(kv => kv.Value is YamlMappingNode) || map.Children.Keys.Any(k => ((YamlScalarNode)k).Value is "model" or "training" or "checkpoint");
                if (!recipeFile)
                    foreach (var (k, v) in map.Children)
                    {
                        var key = ((YamlScalarNode)k).Value!;
                        if (!LegacyKeys.Contains(key)) throw new ArgumentException($"{configPath}:{k.Start.Line}: unknown key '{key}' (known: {string.Join(", ", LegacyKeys)}; or write a recipe with model: and data: sections)");
                        if (v is not YamlScalarNode scalar) throw new ArgumentException($"{configPath}:{v.Start.Line}: key '{key}' must be a single value");
                        flat[key] = scalar.Value ?? "";
                    }
            }
            else if (yaml.Documents.Count > 0) throw new ArgumentException($"{configPath}: the config must be a mapping of key: value");
        }
        foreach (var (k, v) in flags) if (v != null) flat[k] = v;
        var keys = new List<string>();
        if (!recipeFile)
        {
            // Legacy defaults: 2048 tokens; the dataset is data.datasets[0] so task and fields keep their meaning.
            keys.Add("data.max_seq_len=2048");
            if (!flat.ContainsKey("data") || !flat.ContainsKey("format") || !flat.ContainsKey("template"))
            {
                var missing = new[] { "data", "format", "tokenizer", "template", "out" }.FirstOrDefault(k => !flat.ContainsKey(k) && (k != "out" || outFlag == null));
                if (missing != null && overrides.Length == 0) throw new ArgumentException($"missing '{missing}' (--{missing.Replace('_', '-')} or in --config)");
            }
        }
        void Map(string flatKey, string recipeKey) { if (flat.TryGetValue(flatKey, out var v)) keys.Add($"{recipeKey}={v}"); }
        if (flat.TryGetValue("data", out var dataPath))
        {
            DataFormats.Parse(flat.GetValueOrDefault("format") ?? "alpaca");   // the legacy error names the format
            keys.Add($"data.datasets=[{{path: {YamlQuote(dataPath)}, format: {YamlQuote(flat.GetValueOrDefault("format") ?? "")}, task: {YamlQuote(flat.GetValueOrDefault("task") ?? "")}" +
                     (flat.TryGetValue("fields", out var f) && f.Length > 0 ? ", fields: {" + string.Join(", ", FieldMap.Parse(f).Spec!.Split(',').Select(p => p.Split('=')).Select(p => $"{YamlQuote(p[0])}: {YamlQuote(p[1])}")) + "}" : "") + "}]");
        }
        Map("format", "data.format");
        Map("tokenizer", "model.tokenizer");
        Map("template", "data.template");
        Map("max_seq_len", "data.max_seq_len");
        Map("pack", "data.pack");
        Map("skip_invalid", "data.skip_invalid");
        Map("train_on_inputs", "data.train_on_inputs");
        Map("batch_size", "training.micro_batch_size");
        if (flat.TryGetValue("dedup", out var dedup) && dedup == "false") keys.Add("data.dedup=off");
        if (flat.TryGetValue("near_dup", out var near) && double.TryParse(near, System.Globalization.CultureInfo.InvariantCulture, out var j) && j > 0)
            keys.AddRange(["data.dedup=near", $"data.near_dup_threshold={near}"]);
        keys.AddRange(overrides);
        var recipe = ConfigLoader.Load<TrainConfig>(recipeFile ? configPath : null, keys);
        var outDir = outFlag ?? flat.GetValueOrDefault("out") ?? Path.Combine(recipe.Checkpoint.OutputDir, "data");
        return (recipe, outDir);
    }

    private static string YamlQuote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

    private static void PrintSummary(PreparedData prepared, string outDir, bool skipInvalid, int maxSeqLen)
    {
        foreach (var d in prepared.Datasets)
        {
            var s = d.Stats;
            var table = new Table().Title($"itune prepare: {Markup.Escape(d.Name)} → {Markup.Escape(d.Dir)}{(s.CacheReused ? " (cache reused)" : "")}");
            table.AddColumn("metric");
            table.AddColumn(new TableColumn("value").RightAligned());
            void Row(string k, string val) => table.AddRow(Markup.Escape(k), Markup.Escape(val));
            Row("records read", s.RecordsRead.ToString());
            Row("records kept", s.RecordsKept.ToString());
            Row("records rejected", s.RecordsRejected.ToString());
            foreach (var (reason, n) in s.RejectedByReason) Row($"  rejected: {reason}", n.ToString());
            Row("duplicates removed", s.DuplicatesRemoved.ToString());
            Row("flagged (review.jsonl)", s.Flagged.ToString());
            Row("quality rejected", s.QualityRejected.ToString());
            Row("truncated", s.Truncated.ToString());
            Row("dropped", s.Dropped.ToString());
            foreach (var (reason, n) in s.DroppedByReason) Row($"  dropped: {reason}", n.ToString());
            Row("tokens mean / p95 / max", $"{s.Tokens.Mean:F1} / {s.Tokens.P95} / {s.Tokens.Max}");
            Row("tokens total / learned", $"{s.Tokens.Total} / {s.Tokens.Learned}");
            Row("padding plain / bucketed / packed", $"{s.PaddingShare.Plain:P1} / {s.PaddingShare.Bucketed:P1} / {s.PaddingShare.Packed:P1}");
            Row("seconds", s.Seconds.ToString("F2"));
            AnsiConsole.Write(table);
            if (skipInvalid && s.RecordsRejected > 0) Console.WriteLine($"rejected: {Path.Combine(d.Dir, PreparePipeline.RejectedFile)}");
        }
        foreach (var line in DataReport.Lines(prepared, maxSeqLen)) Console.WriteLine(line);
        Console.WriteLine($"stats: {Path.Combine(outDir, PrepareRecipe.ReportFile)}; train with data.path={outDir}");
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
