using System.CommandLine;
using InstructTune.Recipes.Quickstart;
using InstructTune.Training.Loop;
using Spectre.Console;

namespace InstructTune.Cli.Commands;

/// <summary>
/// <c>itune quickstart [--out DIR] [--seed N] [--tiny]</c>: the README's end-to-end run (task suite → tokenizer →
/// base model → LoRA → before/after exact match → report). Progress bars when interactive, plain lines otherwise.
/// </summary>
public static class QuickstartCommand
{
    public static Command Create()
    {
        var command = new Command("quickstart", "Train a small base model and LoRA-tune it on the built-in task suite, offline; writes results.json and report.html");
        var outDir = new Option<string>("--out") { Description = "Output folder (base model, adapter, results.json, report.html)", DefaultValueFactory = _ => "quickstart-out" };
        var seed = new Option<int>("--seed") { Description = "Seed of the suite, initialisation and data order", DefaultValueFactory = _ => 42 };
        var tiny = new Option<bool>("--tiny") { Description = "A shrunken run (seconds) that exercises every stage; scores are meaningless" };
        command.Options.Add(outDir);
        command.Options.Add(seed);
        var overrides = new Option<string?>("--options") { Description = "JSON file overriding quickstart sizes (QuickstartOptions property names, e.g. {\"TuneSteps\": 400})" };
        command.Options.Add(tiny);
        command.Options.Add(overrides);
        command.SetAction(parse =>
        {
            var preset = parse.GetValue(tiny) ? QuickstartOptions.Tiny : QuickstartOptions.Default;
            if (parse.GetValue(overrides) is string file) preset = QuickstartOptions.Overlay(preset, file);
            var options = preset with
            {
                OutDir = parse.GetValue(outDir) ?? "quickstart-out",
                Seed = parse.GetValue(seed),
            };
            QuickstartResult result;
            if (TrainingReporter.Interactive)
            {
                result = AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(),
                    new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx => QuickstartRecipe.Run(options, new SpectreProgress(ctx)));
            }
            else result = QuickstartRecipe.Run(options, new PlainQuickstartProgress(Console.Out));
            Console.WriteLine($"Report: {result.ReportPath}");
            return 0;
        });
        return command;
    }

    /// <summary>One progress bar per training phase; messages go above the bars.</summary>
    private sealed class SpectreProgress(ProgressContext ctx) : IQuickstartProgress
    {
        private readonly Dictionary<string, ProgressTask> _tasks = [];

        public void Say(string line) => AnsiConsole.MarkupLine(Markup.Escape(line));

        public void Step(string phase, int step, int total, double loss)
        {
            if (!_tasks.TryGetValue(phase, out var task)) _tasks[phase] = task = ctx.AddTask(phase, maxValue: total);
            task.Value = step;
            task.Description = $"{phase} loss {loss:F3}";
        }
    }
}
