using System.CommandLine;
using System.Globalization;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Evaluation.Run;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune eval run --data FILE (--model DIR [--adapter DIR] | --predictions FILE) --out DIR</c>: evaluate a model
/// (or given predictions) on a dataset file; see <see cref="EvalRunRecipe"/>. Exit 0 on success; bad input throws
/// (<see cref="EvalInputException"/>) and the CLI error policy reports it (exit 2).
/// </summary>
public static class EvalRunCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data") { Description = "dataset file or folder (any format the data pipeline reads incl. parquet, a dataset_info.json with --dataset, or an mc file); or --config" };
        var format = new Option<string?>("--format") { Description = "alpaca|dolly|sharegpt|messages|gsm8k|sni|csv|self-instruct|mc (default: from the file name where it says, e.g. gsm8k, .csv)" };
        var fields = new Option<string?>("--fields") { Description = "field renames, e.g. instruction=prompt,output=completion" };
        var dataset = new Option<string?>("--dataset") { Description = "entry of a dataset_info.json" };
        var model = new Option<string?>("--model") { Description = "checkpoint folder to generate with" };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT adapter folder (LoRA, DoRA, IA3, prompt or prefix tuning, IaSFT, iPEFT, IAPT, HINT)" };
        var predictions = new Option<string?>("--predictions") { Description = "JSONL of {id, prediction}: score these instead of generating (with --model, perplexity and log-likelihood choice are added)" };
        var outDir = new Option<string?>("--out") { Description = "output folder: predictions.jsonl, results.json, summary.md, report.html (with --config: eval.output_dir)" };
        var config = new Option<string?>("--config") { Description = "recipe YAML whose eval: section names the held-out sets and sections (eval.heldout, eval.multi_turn, eval.robustness, …); the model is the recipe's trained run" };
        var overrides = new Argument<string[]>("overrides") { Description = "key=value overrides of --config, e.g. eval.limit=50", Arity = ArgumentArity.ZeroOrMore };
        var split = new Option<string?>("--split") { Description = "split of a Hugging Face Parquet folder (data/<split>-*.parquet; default train)" };
        var template = new Option<string?>("--template") { Description = "prompt format: auto, chat, raw, alpaca, chatml, llama2, llama3, or a format string such as \"{instruction}\\nInput: {input}\\nAnswer:{output}\"" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "tokens generated per prompt", DefaultValueFactory = _ => 128 };
        var batch = new Option<int>("--batch-size") { Description = "prompts generated together (one forward pass per step)", DefaultValueFactory = _ => 8 };
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy (default)" };
        var topK = new Option<int>("--top-k") { Description = "keep the K most likely tokens (0 = off)" };
        var topP = new Option<double>("--top-p") { Description = "nucleus mass (1 = off)", DefaultValueFactory = _ => 1.0 };
        var repetition = new Option<double>("--repetition-penalty") { Description = "HF repetition penalty (1 = off)", DefaultValueFactory = _ => 1.0 };
        var stop = new Option<string[]>("--stop") { Description = "stop string (repeatable); the prediction is cut before it" };
        var limit = new Option<int>("--limit") { Description = "evaluate N examples spread evenly over the file (seeded; 0 = all)" };
        var seed = new Option<int>("--seed") { Description = "seed of --limit sampling and of sampled decoding" };
        var stem = new Option<bool>("--stem") { Description = "Porter-stem tokens for ROUGE (rouge_score use_stemmer=True)" };
        var prefix = new Option<string>("--reference-prefix") { Description = "text put before the reference when its perplexity is scored (lm-eval target_delimiter; e.g. \" \" when the model was tuned on \" \"+answer)", DefaultValueFactory = _ => "" };
        var force = new Option<bool>("--force") { Description = "start over in an --out folder that holds a run with other settings" };
        var multiTurn = new Option<bool>("--multi-turn") { Description = "add multi-turn coherence (relevance, consistency, logical progression, task completion) over the data's conversations with two or more assistant turns" };
        var embedModel = new Option<string?>("--embed-model") { Description = "checkpoint whose mean-pooled hidden states embed texts for --multi-turn relevance (default: --model without its adapter)" };
        var robustness = new Option<int>("--robustness") { Description = "add robustness to paraphrase over N single-turn examples (spread evenly; 0 = off): synonym and syntactic rewrites, and back-translation with --back-translate" };
        var paraphrases = new Option<int>("--paraphrases") { Description = "rewrites per instruction for --robustness (1-6)", DefaultValueFactory = _ => 4 };
        var backTranslate = new Option<string?>("--back-translate") { Description = "chat endpoint for back-translation paraphrases: local:MODEL_DIR[+ADAPTER_DIR] (in process) or an OpenAI-compatible http(s) URL" };
        var backTranslateModel = new Option<string?>("--back-translate-model") { Description = "model name at a remote --back-translate endpoint" };
        var backTranslateKeyEnv = new Option<string?>("--back-translate-key-env") { Description = "environment variable holding the --back-translate endpoint's API key" };
        var pivot = new Option<string>("--pivot") { Description = "pivot language of back-translation", DefaultValueFactory = _ => "French" };
        var shotsFrom = new Option<string?>("--shots-from") { Description = "training file (same --format) to draw worked examples from: adds zero-/few-shot curves on seen and held-out tasks and cross-task generalisation" };
        var shots = new Option<string>("--shots") { Description = "k values of the shot curves", DefaultValueFactory = _ => "0,1,2,4,8" };
        var shotsLimit = new Option<int>("--shots-limit") { Description = "examples evaluated at each k (spread evenly)", DefaultValueFactory = _ => 50 };
        var command = new Command("run", "Evaluate a model (or given predictions) on a dataset file: per-example predictions and metrics (EM, F1, ROUGE, BLEU, reference perplexity, GSM8K and multiple-choice answers), results.json and report.html; resumable");
        foreach (var o in new Option[] { data, format, fields, dataset, model, adapter, predictions, outDir, template, maxNew, batch, temperature, topK, topP, repetition, stop, limit, seed, stem, prefix, force, multiTurn, embedModel, robustness, paraphrases, backTranslate, backTranslateModel, backTranslateKeyEnv, pivot, config, split, shotsFrom, shots, shotsLimit })
            command.Options.Add(o);
        command.Arguments.Add(overrides);
        command.SetAction(parse =>
        {
            if (parse.GetValue(config) is not null || parse.GetValue(overrides) is { Length: > 0 })
            {
                if (parse.GetValue(data) is not null) throw new EvalInputException("--data and --config: give one (the recipe's eval.heldout names the sets)");
                var cfg = Training.Config.ConfigLoader.Load<Training.Config.TrainConfig>(parse.GetValue(config), parse.GetValue(overrides));
                if (parse.GetValue(outDir) is { } o) cfg.Eval.OutputDir = o;
                foreach (var r in EvalRunRecipe.FromConfig(cfg, parse.GetValue(model), parse.GetValue(adapter), line => Console.Error.WriteLine(line)))
                    Report(r, EvalRunRecipe.Run(r with { Force = parse.GetValue(force) }, line => Console.Error.WriteLine(line)));
                return 0;
            }
            {
                if (parse.GetValue(data) is null || parse.GetValue(outDir) is null) throw new EvalInputException("give --data FILE and --out DIR (or --config with an eval: section)");
                var request = new EvalRunRequest(parse.GetValue(data)!, parse.GetValue(outDir)!)
                {
                    Split = parse.GetValue(split),
                    ShotsFrom = parse.GetValue(shotsFrom),
                    Shots = ParseShots(parse.GetValue(shots) ?? "0,1,2,4,8"),
                    ShotsLimit = parse.GetValue(shotsLimit),
                    Format = parse.GetValue(format),
                    Fields = parse.GetValue(fields),
                    Dataset = parse.GetValue(dataset),
                    ModelDir = parse.GetValue(model),
                    AdapterDir = parse.GetValue(adapter),
                    PredictionsPath = parse.GetValue(predictions),
                    Template = parse.GetValue(template),
                    Limit = parse.GetValue(limit),
                    Seed = parse.GetValue(seed),
                    Stem = parse.GetValue(stem),
                    ReferencePrefix = parse.GetValue(prefix) ?? "",
                    Force = parse.GetValue(force),
                    MultiTurn = parse.GetValue(multiTurn),
                    EmbedModel = parse.GetValue(embedModel),
                    Robustness = parse.GetValue(robustness),
                    Paraphrases = parse.GetValue(paraphrases),
                    BackTranslate = parse.GetValue(backTranslate),
                    BackTranslateModel = parse.GetValue(backTranslateModel),
                    BackTranslateKeyEnv = parse.GetValue(backTranslateKeyEnv),
                    Pivot = parse.GetValue(pivot) ?? "French",
                    Generation = new EvalGenerationSettings
                    {
                        MaxNewTokens = parse.GetValue(maxNew), BatchSize = parse.GetValue(batch), StopStrings = parse.GetValue(stop) ?? [],
                        Temperature = parse.GetValue(temperature), TopK = parse.GetValue(topK), TopP = parse.GetValue(topP),
                        RepetitionPenalty = parse.GetValue(repetition), Seed = parse.GetValue(seed),
                    },
                };
                if (request.AdapterDir is not null && request.ModelDir is null) throw new EvalInputException("--adapter needs --model");
                if (request.Generation.Temperature < 0 || request.Generation.TopK < 0 || !(request.Generation.TopP > 0 && request.Generation.TopP <= 1) || !(request.Generation.RepetitionPenalty > 0))
                    throw new EvalInputException("--temperature must be ≥ 0, --top-k ≥ 0, --top-p in (0, 1], --repetition-penalty > 0");
                Report(request, EvalRunRecipe.Run(request, line => Console.Error.WriteLine(line)));
                return 0;
            }
        });
        return command;
    }

    private static List<int> ParseShots(string text)
    {
        var ks = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            ks.Add(int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var k) ? k : throw new EvalInputException($"--shots {text}: \"{part}\" is not a whole number"));
        return ks;
    }

    private static void Report(EvalRunRequest request, EvalRunRecipe.Outcome outcome)
    {
        var m = outcome.Results["metrics"]!.AsObject();
        string V(string k) => m[k] is { } n ? EvalRunReport.Num(n).ToString("0.000", CultureInfo.InvariantCulture) : "–";
        Console.WriteLine($"{outcome.Examples} examples ({outcome.Resumed} resumed) in {outcome.Seconds:0.0} s: em {V("em")}, exact {V("exact")}, f1 {V("f1")}, rougeL {V("rougeL")}, corpus bleu {EvalRunReport.Num(outcome.Results["corpus_bleu"]!).ToString("0.00", CultureInfo.InvariantCulture)}"
            + (m["gsm8k"] is not null ? $", gsm8k {V("gsm8k")}" : "")
            + (m["fidelity"] is not null ? $", fidelity {V("fidelity")}" : "")
            + (m["ref_ppl"] is not null ? $", reference perplexity {EvalRunReport.Num(outcome.Results["reference_perplexity"]!["ref_ppl_corpus"]!).ToString("0.###", CultureInfo.InvariantCulture)}" : ""));
        Console.WriteLine($"wrote {Path.Combine(request.OutDir, "report.html")}");
    }

    /// <summary><c>itune eval compare RUN_A RUN_B [...] --out DIR</c>: see <see cref="EvalCompare"/>.</summary>
    public static Command CreateCompare()
    {
        var runs = new Argument<string[]>("runs") { Description = "eval run folders, or forgetting.json / continual.json files (or folders holding one) to compare continual-learning strategies (the first is the baseline)", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string>("--out") { Description = "output folder: compare.json, compare.md, report.html", Required = true };
        var resamples = new Option<int>("--bootstrap") { Description = "bootstrap resamples for the 95 % intervals", DefaultValueFactory = _ => 2000 };
        var seed = new Option<int>("--seed") { Description = "bootstrap seed" };
        var command = new Command("compare", "Compare eval run folders (e.g. base vs tuned): per-metric tables with bootstrap confidence intervals of the differences, per-task and per-level breakdowns, SVG charts, the examples that changed most; HTML, Markdown and JSON");
        command.Arguments.Add(runs);
        foreach (var o in new Option[] { outDir, resamples, seed }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            // Continual-learning results (forgetting.json / continual.json, or folders holding them): strategies side by side.
            var given = parse.GetValue(runs)!;
            if (given.Any(r => InstructTune.Recipes.Continual.ForgettingCompare.ReportFile(r) != null))
                return CompareContinual(given, parse.GetValue(outDir)!);
            var data = given.Select(EvalCompare.Read).ToList();
            var result = EvalCompare.Compare(data, parse.GetValue(resamples), parse.GetValue(seed));
            var dir = parse.GetValue(outDir)!;
            EvalCompare.Write(result, dir);
            foreach (var (m, entry) in result["metrics"]!.AsObject().Where(kv => kv.Key is "em" or "f1" or "exact" or "gsm8k"))
                foreach (var (run, o) in entry!.AsObject().Skip(1))
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{m}: {run} − {result["baseline"]} = {EvalRunReport.Num(o!["diff"]!):+0.000;-0.000} (95 % CI {EvalRunReport.Num(o["diff_ci_low"]!):0.000} to {EvalRunReport.Num(o["diff_ci_high"]!):0.000})"));
            Console.WriteLine($"wrote {Path.Combine(dir, "report.html")}");
            return 0;
        });
        return command;
    }

    private static int CompareContinual(IReadOnlyList<string> given, string dir)
    {
        var entries = new List<InstructTune.Recipes.Continual.ForgettingCompare.Entry>();
        foreach (var r in given)
        {
            if (InstructTune.Recipes.Continual.ForgettingCompare.ReportFile(r) == null)
                throw new InstructTune.Common.InputException($"{r}: not a forgetting.json / continual.json (or a folder holding one); eval compare takes eval run folders or continual reports, not both");
            entries.AddRange(InstructTune.Recipes.Continual.ForgettingCompare.Read(r));
        }
        var result = InstructTune.Recipes.Continual.ForgettingCompare.Compare(entries);
        InstructTune.Recipes.Continual.ForgettingCompare.Write(result, dir);
        string metric = result["metrics"]!.AsObject().First().Key;
        Console.WriteLine($"{metric}: strategy, runs, ACC, ΔACC, BWT, ΔBWT, FWT, ΔFWT, forgetting, Δforgetting (Δ vs {result["baseline"]})");
        foreach (var row in InstructTune.Recipes.Continual.ForgettingCompare.Rows(result, metric)) Console.WriteLine(string.Join("  ", row));
        Console.WriteLine($"wrote {Path.Combine(dir, "report.html")}");
        return 0;
    }
}
