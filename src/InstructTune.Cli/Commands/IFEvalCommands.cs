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
        var rules = new Option<string>("--rules") { Description = "rule release: 'upstream' (current google-research code) or '2023' (the paper's release: random letter for non-ASCII letter_frequency letters)", DefaultValueFactory = _ => "upstream" };
        var rulesSeed = new Option<string>("--rules-seed") { Description = "with --rules 2023: seed of CPython's random for the letter draws, or 'random'", DefaultValueFactory = _ => "0" };

        var command = new Command("ifeval", "IFEval verifiable-instruction accuracy (strict and loose, prompt and instruction level)");
        foreach (var o in new Option[] { input, responses, outDir, punkt, profiles, seed, rules, rulesSeed }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            ulong? seedValue, ruleSeed;
            IFEvalRules ruleSet;
            try
            {
                seedValue = ParseSeed("--seed", parse.GetValue(seed)!);
                ruleSeed = ParseSeed("--rules-seed", parse.GetValue(rulesSeed)!);
                ruleSet = parse.GetValue(rules) switch
                {
                    "upstream" => IFEvalRules.Upstream,
                    "2023" => IFEvalRules.Release2023,
                    var other => throw new FormatException($"--rules must be 'upstream' or '2023', got '{other}'"),
                };
            }
            catch (FormatException e)
            {
                Console.Error.WriteLine("error: " + e.Message);
                return 2;
            }
            try
            {
                var services = IFEvalServices.Load(parse.GetValue(punkt), parse.GetValue(profiles), seedValue, ruleSet, ruleSeed);
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

    private static ulong? ParseSeed(string option, string text) =>
        text == "random" ? null
        : ulong.TryParse(text, out var s) ? s
        : throw new FormatException($"{option} must be a non-negative integer or 'random', got '{text}'");
}
