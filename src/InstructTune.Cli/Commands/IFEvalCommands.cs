using System.CommandLine;
using InstructTune.Common;
using InstructTune.Evaluation.IFEval;
using InstructTune.Evaluation.Metrics;
using InstructTune.Evaluation.ModelBackends;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune eval ifeval --input input_data.jsonl --responses responses.jsonl --out DIR</c>: IFEval strict and loose
/// evaluation, writing eval_results_strict.jsonl, eval_results_loose.jsonl and summary.json and printing the four
/// accuracies. Exit code 2 when the inputs have problems (all are listed, one per line, on stderr).
/// <c>itune eval ifeval --model DIR [--adapter DIR] --out DIR</c> first generates the responses
/// (<see cref="IFEvalGeneration"/>: OUT/responses.jsonl in the official format) and then scores them the same way.
/// </summary>
public static class IFEvalCommands
{
    /// <summary>The <c>ifeval</c> subcommand, to be placed under <c>itune eval</c>.</summary>
    public static Command CreateIfevalCommand()
    {
        var input = new Option<string?>("--input") { Description = "IFEval input_data.jsonl (key, prompt, instruction_id_list, kwargs); default with --model: shared/testdata/ifeval/input_data.jsonl" };
        var responses = new Option<string?>("--responses") { Description = "Responses JSONL with fields prompt and response (or give --model to generate them)" };
        var model = new Option<string?>("--model") { Description = "generate the responses with this checkpoint (written to OUT/responses.jsonl in the official format, then scored)" };
        var adapter = new Option<string?>("--adapter") { Description = "LoRA adapter folder (PEFT layout) for --model" };
        var template = new Option<string?>("--template") { Description = "prompt format for --model: auto, chat, raw, alpaca, chatml, llama2, llama3, or a format string" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "tokens generated per prompt (--model)", DefaultValueFactory = _ => 256 };
        var batch = new Option<int>("--batch-size") { Description = "prompts generated together (--model)", DefaultValueFactory = _ => 8 };
        var limit = new Option<int>("--limit") { Description = "with --model: N prompts spread evenly (seeded by --limit-seed; 0 = all)" };
        var limitSeed = new Option<int>("--limit-seed") { Description = "seed of --limit" };
        var outDir = new Option<string>("--out") { Description = "Output folder", Required = true };
        var punkt = new Option<string?>("--punkt-dir") { Description = "NLTK Punkt English parameters (punkt_tab layout); default: shared/testdata/nltk-punkt-english" };
        var profiles = new Option<string?>("--langdetect-profiles") { Description = "langdetect profile folder; default: shared/testdata/langdetect-profiles" };
        var seed = new Option<string>("--seed") { Description = "langdetect seed (integer), or 'random' to reseed every detection like the unseeded official checker", DefaultValueFactory = _ => "0" };
        var rules = new Option<string>("--rules") { Description = "rule release: 'upstream' (current google-research code) or '2023' (the paper's release: random letter for non-ASCII letter_frequency letters)", DefaultValueFactory = _ => "upstream" };
        var rulesSeed = new Option<string>("--rules-seed") { Description = "with --rules 2023: seed of CPython's random for the letter draws, or 'random'", DefaultValueFactory = _ => "0" };

        var command = new Command("ifeval", "IFEval verifiable-instruction accuracy (strict and loose, prompt and instruction level)");
        foreach (var o in new Option[] { input, responses, model, adapter, template, maxNew, batch, limit, limitSeed, outDir, punkt, profiles, seed, rules, rulesSeed }) command.Options.Add(o);
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
                var (inputPath, responsesPath) = Inputs(parse, input, responses, model, adapter, template, maxNew, batch, limit, limitSeed, dir);
                var result = IFEvalRun.Run(inputPath, responsesPath, services, dir);
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

    // --responses scores given responses; --model generates them first (and defaults --input to the shared copy).
    private static (string Input, string Responses) Inputs(ParseResult parse, Option<string?> input, Option<string?> responses,
        Option<string?> model, Option<string?> adapter, Option<string?> template, Option<int> maxNew, Option<int> batch,
        Option<int> limit, Option<int> limitSeed, string dir)
    {
        var modelDir = parse.GetValue(model);
        var given = parse.GetValue(responses);
        if (modelDir is null == given is null)
            throw new EvalInputException("give either --responses FILE (score them) or --model DIR (generate, then score)");
        if (modelDir is null)
            return (parse.GetValue(input) ?? throw new EvalInputException("--input is required with --responses"), given!);
        if (parse.GetValue(maxNew) < 1 || parse.GetValue(batch) < 1) throw new EvalInputException("--max-new-tokens and --batch-size must be ≥ 1");
        var inputPath = parse.GetValue(input) ?? SharedTestData.Path("ifeval", "input_data.jsonl");
        var settings = new EvalGenerationSettings { MaxNewTokens = parse.GetValue(maxNew), BatchSize = parse.GetValue(batch) };
        return IFEvalGeneration.Generate(inputPath, modelDir, parse.GetValue(adapter), parse.GetValue(template), settings,
            parse.GetValue(limit), parse.GetValue(limitSeed), dir, line => Console.Error.WriteLine(line));
    }

    private static ulong? ParseSeed(string option, string text) =>
        text == "random" ? null
        : ulong.TryParse(text, out var s) ? s
        : throw new FormatException($"{option} must be a non-negative integer or 'random', got '{text}'");
}
