using InstructTune.Cli;

namespace InstructTune.Tests.Evaluation;

/// <summary>Runs itune in-process with Console.Out and Console.Error captured (callers are in the Console collection).</summary>
public static class CliCapture
{
    public static (int Rc, string Stdout, string Stderr) Run(params string[] args)
        => TestConsole.Run(args);
}
