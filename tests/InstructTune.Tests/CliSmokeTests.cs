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
        var (rc, output, _) = TestConsole.Run("--help");

        Assert.Equal(0, rc);
        foreach (var command in CliApp.BuildRoot().Subcommands)
            Assert.Contains(command.Name, output.ToString());
    }
}
