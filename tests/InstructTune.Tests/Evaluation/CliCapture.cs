using InstructTune.Cli;

namespace InstructTune.Tests.Evaluation;

/// <summary>Runs itune in-process with Console.Out and Console.Error captured (callers are in the Console collection).</summary>
public static class CliCapture
{
    public static (int Rc, string Stdout, string Stderr) Run(params string[] args)
    {
        var (o, e) = (new StringWriter(), new StringWriter());
        var (po, pe) = (Console.Out, Console.Error);
        Console.SetOut(o);
        Console.SetError(e);
        try { return (CliApp.Run(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(po); Console.SetError(pe); }
    }
}
