using InstructTune.Cli;

namespace InstructTune.Tests;

/// <summary>Runs the CLI in process with Console.Out/Error captured (tests using it belong to the "Console" collection).</summary>
internal static class CliCapture
{
    public static (int Rc, string Out, string Err) Run(params string[] args) => TestConsole.Run(args);
}
