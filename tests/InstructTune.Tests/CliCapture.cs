using InstructTune.Cli;

namespace InstructTune.Tests;

/// <summary>Runs the CLI in process with Console.Out/Error captured (tests using it belong to the "Console" collection).</summary>
internal static class CliCapture
{
    public static (int Rc, string Out, string Err) Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        var (po, pe) = (Console.Out, Console.Error);
        Console.SetOut(o); Console.SetError(e);
        try { return (CliApp.Run(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(po); Console.SetError(pe); }
    }
}
