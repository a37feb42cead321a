using System.CommandLine;
using System.Text.Json;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.ModelBackends;
using InstructTune.Reports;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune eval …</c>: <c>metrics</c> scores prediction/reference pairs (EM, F1, ROUGE, BLEU); <c>ifeval</c> (from
/// <see cref="IFEvalCommands"/>) runs IFEval; <c>model</c> runs an evaluation suite through a checkpoint.
/// </summary>
public static class EvalCommands
{
    public static Command Create()
    {
        var eval = new Command("eval", "Evaluate predictions and models");
        eval.Subcommands.Add(CreateMetricsCommand());
        eval.Subcommands.Add(IFEvalCommands.CreateIfevalCommand());
        eval.Subcommands.Add(EvalJudgeCommand.Create());
        eval.Subcommands.Add(CreateModelCommand());
        eval.Subcommands.Add(EvalRunCommand.Create());
        eval.Subcommands.Add(EvalRunCommand.CreateCompare());
        return eval;
    }

    public static Command CreateMetricsCommand()
    {
        var command = new Command("metrics",
            "Score {id, prediction, references} JSONL pairs: EM, F1 (SQuAD v1.1), ROUGE-1/2/L/Lsum (rouge_score), BLEU (sacreBLEU)");
        var input = new Option<string>("--input") { Description = "pairs JSONL: {\"id\", \"prediction\", \"references\": [...]}", Required = true };
        var stem = new Option<bool>("--stem") { Description = "Porter-stem tokens for ROUGE (rouge_score use_stemmer=True)" };
        var output = new Option<string?>("--output") { Description = "write the JSONL here (atomically) instead of stdout" };
        command.Options.Add(input);
        command.Options.Add(stem);
        command.Options.Add(output);
        command.SetAction(parseResult =>
        {
            List<MetricPair> pairs;
            try { pairs = PairsReader.Read(parseResult.GetValue(input)!); }
            catch (EvalInputException ex)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 2;
            }
            bool useStem = parseResult.GetValue(stem);
            var scores = pairs.Select(p => PairMetrics.Score(p, useStem)).ToList();
            var sb = new System.Text.StringBuilder();
            foreach (var s in scores) sb.Append(JsonSerializer.Serialize(s)).Append('\n');
            sb.Append(JsonSerializer.Serialize(PairMetrics.Corpus(pairs, scores))).Append('\n');
            var path = parseResult.GetValue(output);
            if (path is null) Console.Out.Write(sb.ToString());
            else
            {
                AtomicFile.WriteAllText(path, sb.ToString());
                Console.Error.WriteLine($"wrote {scores.Count + 1} lines to {path}");
            }
            return 0;
        });
        return command;
    }

    /// <summary><c>itune eval model</c>: generation over a suite with a local checkpoint, full report. Exit 0 on
    /// success, 1 when some judgements failed, 2 on bad input (missing folder, adapter that does not fit, bad suite).</summary>
    public static Command CreateModelCommand()
    {
        var command = new Command("model", "Evaluate a checkpoint (optionally with a LoRA adapter) on a suite: generation, metrics per level, robustness, generalization, multi-turn, judge; writes results.json, summary.md, report.html");
        var model = new Option<string>("--model") { Description = "checkpoint folder (config.json, safetensors, tokenizer)", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT adapter folder (LoRA, DoRA, IA3, prompt or prefix tuning, IaSFT, iPEFT, IAPT, HINT)" };
        var suite = new Option<string>("--suite") { Description = "builtin, or a suite JSON file", Required = true };
        var outDir = new Option<string>("--out") { Description = "output folder for the report", Required = true };
        var template = new Option<string?>("--template") { Description = "prompt format: auto (default: the tokenizer's chat template if any, else raw), chat, raw, alpaca, chatml, llama2, llama3, or a format string" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "tokens generated per prompt", DefaultValueFactory = _ => 128 };
        var limit = new Option<int>("--limit") { Description = "N items of each part of the suite, spread evenly over it (seeded; 0 = all)" };
        var judge = new Option<string?>("--judge") { Description = "judge YAML (OpenAI-compatible endpoint), or local:DIR for a local checkpoint as the judge" };
        var stop = new Option<string[]>("--stop") { Description = "stop string (repeatable); the completion is cut before it" };
        var batch = new Option<int>("--batch-size") { Description = "prompts decoded together", DefaultValueFactory = _ => 8 };
        foreach (var o in new Option[] { model, adapter, suite, outDir, template, maxNew, limit, judge, stop, batch }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            try
            {
                if (parse.GetValue(maxNew) < 1) throw new EvalInputException("--max-new-tokens must be ≥ 1");
                var request = new ModelEvaluationRequest(parse.GetValue(model)!, parse.GetValue(outDir)!)
                {
                    AdapterDir = parse.GetValue(adapter),
                    Suite = parse.GetValue(suite)!,
                    Template = parse.GetValue(template),
                    Limit = parse.GetValue(limit),
                    Judge = parse.GetValue(judge),
                    Generation = new EvalGenerationSettings
                    {
                        MaxNewTokens = parse.GetValue(maxNew), StopStrings = parse.GetValue(stop) ?? [], BatchSize = parse.GetValue(batch),
                    },
                };
                var (results, info) = ModelEvaluation.RunAsync(request, line => Console.Error.WriteLine(line)).GetAwaiter().GetResult();
                Console.WriteLine($"{info.Prompts} prompts in {info.Seconds:0.0} s; reference perplexity " +
                                  (info.ReferencePerplexity is { } p ? p.Perplexity.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) : "n/a") +
                                  $"; wrote {Path.Combine(request.OutDir, "report.html")}");
                return results.Judge is { Failed: > 0 } ? 1 : 0;
            }
            catch (EvalInputException ex)
            {
                Console.Error.WriteLine($"error: {ex.Message}");
                return 2;
            }
        });
        return command;
    }
}
