using System.CommandLine;
using InstructTune.Evaluation.IFEval;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune eval ifeval --input input_data.jsonl --responses responses.jsonl --out DIR</c>: IFEval strict and loose
/// evaluation, writing eval_results_strict.jsonl, eval_results_loose.jsonl and summary.json and printing the four
/// accuracies. Exit code 2 when the inputs have problems (all are listed, one per line, on stderr).
/// </summary>
public static class IFEvalCommands
{
    /// <summary>The <c>ifeval</c> subcommand, to be placed under <c>itune eval</c>.</summary>
    public static Command CreateIfevalCommand()
    {
        var input = new Option<string>("--input") { Description = "IFEval input_data.jsonl (key, prompt, instruction_id_list, kwargs)", Required = true };
        var responses = new Option<string>("--responses") { Description = "Responses JSONL with fields prompt and response", Required = true };
        var outDir = new Option<string>("--out") { Description = "Output folder", Required = true };
        var punkt = new Option<string?>("--punkt-dir") { Description = "NLTK Punkt English parameters (punkt_tab layout); default: shared/testdata/nltk-punkt-english" };
        var profiles = new Option<string?>("--langdetect-profiles") { Description = "langdetect profile folder; default: shared/testdata/langdetect-profiles" };
        var seed = new Option<string>("--seed") { Description = "langdetect seed (integer), or 'random' to reseed every detection like the unseeded official checker", DefaultValueFactory = _ => "0" };

        var command = new Command("ifeval", "IFEval verifiable-instruction accuracy (strict and loose, prompt and instruction level)");
        foreach (var o in new Option[] { input, responses, outDir, punkt, profiles, seed }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            var seedText = parse.GetValue(seed)!;
            ulong? seedValue = seedText == "random" ? null
                : ulong.TryParse(seedText, out var s) ? s
                : throw new ArgumentException($"--seed must be a non-negative integer or 'random', got '{seedText}'");
            try
            {
                var services = IFEvalServices.Load(parse.GetValue(punkt), parse.GetValue(profiles), seedValue);
                var dir = parse.GetValue(outDir)!;
                var result = IFEvalRun.Run(parse.GetValue(input)!, parse.GetValue(responses)!, services, dir);
                foreach (var w in result.Warnings) Console.Error.WriteLine("warning: " + w);
                Console.WriteLine(IFEvalWriter.Table(result.Summary));
                Console.WriteLine($"wrote {Path.Combine(dir, IFEvalWriter.StrictFile)}, {IFEvalWriter.LooseFile}, {IFEvalWriter.SummaryFile}");
                return 0;
            }
            catch (IFEvalInputException e)
            {
                foreach (var p in e.Problems) Console.Error.WriteLine("error: " + p);
                return 2;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or FormatException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine("error: " + e.Message);
                return 2;
            }
        });
        return command;
    }
}
