using System.CommandLine;
using InstructTune.Cli.Commands;

namespace InstructTune.Cli;

/// <summary>Builds the itune command tree from <see cref="CommandCatalog"/> and runs it; tests call it in-process.</summary>
public static class CliApp
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("InstructTune: instruction fine-tuning for .NET");
        foreach (var command in CommandCatalog.All())
            root.Subcommands.Add(command);
        return root;
    }

    public static int Run(string[] args) => BuildRoot().Parse(args).Invoke();
}
