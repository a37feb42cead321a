using System.CommandLine;
using System.CommandLine.Parsing;
using InstructTune.Cli.Commands;

namespace InstructTune.Cli;

/// <summary>Builds the itune command tree from <see cref="CommandCatalog"/> and runs it; tests call it in-process.</summary>
public static class CliApp
{
    /// <summary>Every command takes --debug: on an error, print the stack trace after the one-line message.</summary>
    public static readonly Option<bool> Debug = new("--debug") { Description = "On an error, also print the stack trace", Recursive = true };

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("InstructTune: instruction fine-tuning for .NET");
        root.Options.Add(Debug);
        foreach (var command in CommandCatalog.All())
            root.Subcommands.Add(command);
        return root;
    }

    /// <summary>Parses and runs; every exception a command lets escape goes through <see cref="CliErrors"/>.</summary>
    public static int Run(string[] args)
    {
        var parse = BuildRoot().Parse(args);
        bool debug = Environment.GetEnvironmentVariable("ITUNE_DEBUG") is "1" or "true" || args.Contains("--debug");
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            return CliErrors.Report(e, CommandPath(parse.CommandResult), debug);
        }
        finally
        {
            // For the hostile-input probes (tests/…/Hostile): the process's own peak working set (VmHWM on Linux).
            if (Environment.GetEnvironmentVariable("ITUNE_REPORT_PEAK") == "1")
                Console.Error.WriteLine($"itune: peak working set {System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64} bytes");
        }
    }

    private static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is CommandResult c && c.Parent != null; r = r.Parent)
            names.Insert(0, c.Command.Name);
        return string.Join(' ', names);
    }
}
