using System.CommandLine;
using System.Text.Json;
using InstructTune.Evaluation.Metrics;
using InstructTune.Reports;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune eval …</c>: <c>metrics</c> scores prediction/reference pairs (EM, F1, ROUGE, BLEU); <c>ifeval</c> (from
/// <see cref="IFEvalCommands"/>) runs IFEval; <c>model</c> arrives with the models issue.
/// </summary>
public static class EvalCommands
{
    public static Command Create()
    {
        var eval = new Command("eval", "Evaluate predictions and models");
        eval.Subcommands.Add(CreateMetricsCommand());
        eval.Subcommands.Add(IFEvalCommands.CreateIfevalCommand());
        eval.Subcommands.Add(EvalJudgeCommand.Create());
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
}
