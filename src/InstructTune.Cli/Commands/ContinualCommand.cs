using System.CommandLine;
using System.Globalization;
using InstructTune.Recipes.Continual;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune continual --config FILE --strategies sequential,replay,… [--seeds N] [--out DIR] [key=value …]</c>: runs a
/// staged recipe (data.stages) once per continual-learning strategy × seed, resumably, and writes continual.json +
/// continual.html (mean ± std of ACC / BWT / FWT / forgetting per strategy, each seed's matrices, heatmaps).
/// <c>--list</c> prints the strategies and what each one overrides.
/// </summary>
public static class ContinualCommand
{
    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "A staged recipe (two or more data.stages) with no continual strategy of its own, e.g. configs/continual-quickstart.yaml" };
        var strategies = new Option<string>("--strategies") { Description = "Comma-separated strategies (--list shows them)", DefaultValueFactory = _ => "sequential,replay,ewc,agem,progressive" };
        var seeds = new Option<int>("--seeds") { Description = "Seeds per strategy: training.seed, training.seed + 1, …", DefaultValueFactory = _ => 3 };
        var outDir = new Option<string>("--out") { Description = "Folder for the runs (OUT/<strategy>/seed<S>/) and continual.json / continual.html; run again to resume", DefaultValueFactory = _ => "continual-out" };
        var list = new Option<bool>("--list") { Description = "Print the strategies and their overrides, then exit" };
        var verbose = new Option<bool>("--verbose") { Description = "Show every run's training progress lines (default: one line per 50 steps)" };
        var overrides = new Argument<string[]>("overrides") { Description = "key=value overrides applied to every run (e.g. model.path=qs/base)", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("continual", "Compare continual-learning strategies (sequential, replay, EWC, A-GEM/GEM, progressive adapters) on one staged recipe over several seeds: one forgetting report (JSON + HTML); resumable")
            { config, strategies, seeds, outDir, list, verbose, overrides };
        cmd.SetAction(p =>
        {
            if (p.GetValue(list))
            {
                foreach (var s in ContinualStrategies.All) Console.WriteLine($"{s.Name,-12} {s.Description}");
                return 0;
            }
            var path = p.GetValue(config) ?? throw new InstructTune.Common.InputException("--config: required (a staged recipe, e.g. configs/continual-quickstart.yaml)");
            var chosen = ContinualStrategies.Parse(p.GetValue(strategies) ?? "");
            var dir = p.GetValue(outDir)!;
            // Ctrl-C: the current run saves a checkpoint at the step it reached and the command stops; run it again to resume.
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler handler = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += handler;
            ContinualBenchmarkReport report;
            try { report = ContinualBenchmark.Run(path, p.GetValue(overrides) ?? [], chosen, p.GetValue(seeds), dir, Console.Error.WriteLine, quiet: !p.GetValue(verbose), cts.Token); }
            catch (OperationCanceledException) { Console.Error.WriteLine($"stopped; the finished runs are in {Path.Combine(dir, ContinualBenchmark.JsonFile)}"); return 130; }
            finally { Console.CancelKeyPress -= handler; }
            Console.WriteLine("strategy       ACC (token)          BWT (token)          FWT (token)          forgetting (token)");
            foreach (var s in report.Strategies)
            {
                if (!s.Metrics.TryGetValue("token_accuracy", out var m)) continue;
                static string F(ContinualStat x) => string.Create(CultureInfo.InvariantCulture, $"{x.Mean,8:+0.0000;-0.0000} ± {x.Std:0.0000}");
                Console.WriteLine($"{s.Strategy,-14} {F(m.AverageAccuracy),-20} {F(m.BackwardTransfer),-20} {F(m.ForwardTransfer),-20} {F(m.Forgetting)}");
            }
            Console.WriteLine($"Report: {Path.Combine(dir, ContinualBenchmark.HtmlFile)}");
            return 0;
        });
        return cmd;
    }
}
