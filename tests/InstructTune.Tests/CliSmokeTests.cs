using InstructTune.Cli;

namespace InstructTune.Tests;

/// <summary>Tests that capture Console.Out share this collection so they never run in parallel.</summary>
[CollectionDefinition("Console", DisableParallelization = true)]
public sealed class ConsoleCollection;

[Collection("Console")]
public class CliSmokeTests
{
    [Fact]
    public void HelpListsEveryCatalogCommand()
    {
        var output = new StringWriter();
        var previous = Console.Out;
        Console.SetOut(output);
        int rc;
        try { rc = CliApp.Run(["--help"]); }
        finally { Console.SetOut(previous); }

        Assert.Equal(0, rc);
        foreach (var command in CliApp.BuildRoot().Subcommands)
            Assert.Contains(command.Name, output.ToString());
    }
}
