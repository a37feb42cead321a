// itune config schema | validate: the one config schema of every command, printed from the typed records
// (so it cannot drift), and a check of a recipe file without running anything (issue 12).
using System.CommandLine;
using InstructTune.Evaluation.Judge;
using InstructTune.Evaluation.Metrics;
using InstructTune.Recipes;
using InstructTune.Training.Config;

namespace InstructTune.Cli.Commands;

public static class ConfigCommands
{
    public static Command Create()
    {
        var cmd = new Command("config", "The config schema (every key with type, default, range, description) and a validator");
        cmd.Subcommands.Add(Schema());
        cmd.Subcommands.Add(Validate());
        return cmd;
    }

    private static Command Schema()
    {
        var json = new Option<bool>("--json") { Description = "print the schema as JSON: [{key, type, default, range, description, section}]" };
        var judge = new Option<bool>("--judge") { Description = "the keys of a judge config file (eval judge --config) instead of the recipe" };
        var cmd = new Command("schema", "Print every config key of the recipe (train, prepare, eval, generate, quickstart) with its type, default, allowed range and description") { json, judge };
        cmd.SetAction(p =>
        {
            var root = p.GetValue(judge) ? typeof(JudgeSection) : typeof(TrainConfig);
            if (p.GetValue(json)) Console.WriteLine(ConfigSchema.ToJson(root));
            else
            {
                Console.WriteLine(p.GetValue(judge)
                    ? "# judge config file (itune eval judge --config FILE, itune eval model --judge FILE): flat keys"
                    : "# recipe keys: YAML sections as below, or key=value overrides on the command line (e.g. training.learning_rate=1e-4)");
                Console.Write(ConfigSchema.ToText(root));
            }
            return 0;
        });
        return cmd;
    }

    private static Command Validate()
    {
        var file = new Argument<string>("file") { Description = "recipe YAML (or judge config with --judge)" };
        var judge = new Option<bool>("--judge") { Description = "validate a judge config file" };
        var overrides = new Argument<string[]>("overrides") { Description = "key=value overrides to check with the file", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("validate", "Check a config file (keys, types, ranges, cross-key rules) without running anything") { file, overrides, judge };
        cmd.SetAction(p =>
        {
            // Errors escape to the CLI error policy (one line, exit code 2).
            var path = p.GetValue(file)!;
            if (p.GetValue(judge))
            {
                try { JudgeConfigFile.Load(path, _ => "set"); }
                catch (EvalInputException e) { throw new ConfigException(e.Message); }
            }
            else FineTuneRecipe.Validate(ConfigLoader.Load<TrainConfig>(path, p.GetValue(overrides)));
            Console.WriteLine($"{path}: valid");
            return 0;
        });
        return cmd;
    }
}
