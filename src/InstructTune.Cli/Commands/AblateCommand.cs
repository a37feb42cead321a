using System.CommandLine;
using System.Globalization;
using InstructTune.Recipes.Ablation;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune ablate --config FILE --variants baseline,segments,… [--seeds N] [--out DIR] [key=value …]</c>: trains each
/// named variant (a set of recipe overrides, <see cref="AblationVariants"/>) with the same config, data, steps and seeds,
/// and writes ablation.json + ablation.html (mean ± std per variant, parameter counts, step time and its overhead,
/// trainable-state memory, and, when the config names eval.heldout sets or <c>--ifeval</c> is given, each run's
/// evaluation on those same sets aggregated per metric). <c>--list</c> prints the known variants.
/// </summary>
public static class AblateCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "The recipe every variant starts from (YAML)" };
        var variants = new Option<string>("--variants") { Description = "Comma-separated variant names; the first is the baseline of the step-time overhead", DefaultValueFactory = _ => "baseline,segments,gates,segments_gates" };
        var seeds = new Option<int>("--seeds") { Description = "Seeds per variant: training.seed, training.seed + 1, …", DefaultValueFactory = _ => 3 };
        var outDir = new Option<string>("--out") { Description = "New (or empty) folder for the runs and ablation.json / ablation.html", DefaultValueFactory = _ => "ablation-out" };
        var evalLimit = new Option<int?>("--eval-limit") { Description = "Examples evaluated per held-out set (eval.heldout) and IFEval prompts, spread evenly; default: the config's eval.limit (0 = all)" };
        var ifeval = new Option<string?>("--ifeval") { Description = "IFEval input JSONL (e.g. input_data.jsonl): every run answers its prompts and is scored by the IFEval checker" };
        var noEval = new Option<bool>("--no-eval") { Description = "Held-out loss only: skip the generation evaluation even when the config names eval.heldout" };
        var list = new Option<bool>("--list") { Description = "Print the known variants and their overrides, then exit" };
        var overrides = new Argument<string[]>("overrides") { Description = "key=value overrides applied to every variant (e.g. training.max_steps=100)", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("ablate", "Train named variants (sets of recipe overrides) over several seeds and compare them in one report (JSON + HTML)")
            { config, variants, seeds, outDir, evalLimit, ifeval, noEval, list, overrides };
        cmd.SetAction(p =>
        {
            if (p.GetValue(list))
            {
                foreach (var v in AblationVariants.All)
                    Console.WriteLine($"{v.Name,-16} {v.Description}{(v.Overrides.Count > 0 ? "  [" + string.Join(" ", v.Overrides) + "]" : "")}");
                return 0;
            }
            var path = p.GetValue(config) ?? throw new InstructTune.Common.InputException("ablate: --config FILE is required (the recipe every variant starts from)");
            if (!File.Exists(path)) throw new InstructTune.Common.InputException($"--config: {path} not found");
            var chosen = AblationVariants.Parse(p.GetValue(variants) ?? "");
            var evalOptions = new AblationEvalOptions { Limit = p.GetValue(evalLimit), IfevalPath = p.GetValue(ifeval), Enabled = !p.GetValue(noEval) };
            var report = AblationRecipe.Run(path, p.GetValue(overrides) ?? [], chosen, p.GetValue(seeds), p.GetValue(outDir)!, Console.Error.WriteLine, eval: evalOptions);
            foreach (var v in report.Variants)
            {
                var headline = v.Eval is null ? "" : "  " + string.Join("  ", v.Eval
                    .Where(e => e.Key.EndsWith(".exact", StringComparison.Ordinal) && e.Key.Count(c => c == '.') == 1 || e.Key is "ifeval.prompt_strict" or "temperature.mae")
                    .Select(e => string.Create(CultureInfo.InvariantCulture, $"{e.Key} {e.Value.Mean:F3} ± {e.Value.Std:F3}")));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{v.Variant,-16} held-out loss {(v.EvalLossMean is { } m ? $"{m:F4} ± {v.EvalLossStd:F4}" : "–"),-18} step {v.StepSecondsMean:F3} s ({(v.StepTimeOverhead is { } o ? $"{100 * o:+0.0;-0.0} %" : "–")})  trainable {v.TrainableParams:N0}") + headline);
            }
            Console.WriteLine($"Report: {Path.Combine(p.GetValue(outDir)!, AblationRecipe.HtmlFile)}");
            return 0;
        });
        return cmd;
    }
}
