using System.CommandLine;
using System.Reflection;

namespace InstructTune.Cli.Commands;

/// <summary><c>itune version</c>: prints the assembly version and the runtime it runs on.</summary>
public static class VersionCommand
{
    public static Command Create()
    {
        var command = new Command("version", "Print the InstructTune version and runtime");
        command.SetAction(_ =>
        {
            var version = typeof(VersionCommand).Assembly.GetName().Version;
            Console.WriteLine($"itune {version} on .NET {Environment.Version}");
            return 0;
        });
        return command;
    }
}
