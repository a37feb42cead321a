using System.Reflection;
using System.Text.Json;
using InstructTune.Common;
using InstructTune.Training.Loop;

namespace InstructTune.Cli;

/// <summary>
/// The one error policy of every itune command (docs/RELIABILITY.md, "Error policy"):
/// <list type="bullet">
/// <item>bad input or a broken environment (<see cref="InputException"/> and its subclasses, IOException — a missing
/// file, a full disk —, UnauthorizedAccessException, InvalidDataException, ArgumentException, FormatException,
/// JsonException, HttpRequestException, TimeoutException) → one line <c>itune CMD: error: MESSAGE</c> on stderr,
/// exit code <see cref="BadInput"/> (2); the message names the file and line, key, override, tensor or option;</item>
/// <item>a diverged training run → <see cref="Diverged"/> (3);</item>
/// <item>Ctrl-C / cancellation → <see cref="Cancelled"/> (130);</item>
/// <item>anything else is a defect of ours: one line <c>itune CMD: internal error (Type): MESSAGE</c>, exit
/// <see cref="Internal"/> (70).</item>
/// </list>
/// No stack trace is printed unless <c>--debug</c> is given (or ITUNE_DEBUG=1). Commands throw; they do not
/// catch-and-print on their own (a command may still return 1 for "ran, but some items failed", e.g. judgements).
/// </summary>
public static class CliErrors
{
    public const int BadInput = 2;
    public const int Diverged = 3;
    public const int Internal = 70;
    public const int Cancelled = 130;

    /// <summary>True when <paramref name="e"/> is an error the user can fix (exit 2), false for a defect.</summary>
    public static bool IsInputError(Exception e) => e is InputException
        or IOException or UnauthorizedAccessException or InvalidDataException or FormatException
        or JsonException or HttpRequestException or TimeoutException or KeyNotFoundException
        or ArgumentException and not ArgumentNullException;

    /// <summary>Prints the one-line report of <paramref name="e"/> (plus the stack trace under --debug); returns the exit code.</summary>
    public static int Report(Exception e, string command, bool debug, TextWriter? error = null)
    {
        error ??= Console.Error;
        e = Unwrap(e);
        var prefix = string.IsNullOrEmpty(command) ? "itune" : "itune " + command;
        int code;
        string line;
        switch (e)
        {
            case TrainingDivergedException:
                code = Diverged; line = $"{prefix}: training stopped: {OneLine(e.Message)}"; break;
            case OperationCanceledException:
                code = Cancelled; line = $"{prefix}: cancelled"; break;
            case var _ when IsInputError(e):
                code = BadInput; line = $"{prefix}: error: {Describe(e)}"; break;
            default:
                code = Internal;
                line = $"{prefix}: internal error ({e.GetType().Name}): {OneLine(e.Message)}" +
                       (debug ? "" : " (a defect of itune; rerun with --debug for the stack trace and report it)");
                break;
        }
        error.WriteLine(line);
        if (debug) error.WriteLine(e.ToString());
        return code;
    }

    /// <summary>The message of an input error; IFEval-style lists keep their lines, everything else is one line.</summary>
    private static string Describe(Exception e) => e switch
    {
        Evaluation.IFEval.IFEvalInputException multi => multi.Message,
        // A disk-full IOException's message does not say which file; the path is in the message of our writers.
        _ => OneLine(e.Message),
    };

    private static string OneLine(string message)
    {
        var trimmed = message.Trim();
        int nl = trimmed.IndexOfAny(['\r', '\n']);
        return nl < 0 ? trimmed : trimmed[..nl].TrimEnd() + " …";
    }

    private static Exception Unwrap(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case AggregateException { InnerExceptions.Count: 1 } a: e = a.InnerExceptions[0]; continue;
                case TargetInvocationException { InnerException: { } inner }: e = inner; continue;
                case TypeInitializationException { InnerException: { } inner2 }: e = inner2; continue;
                default: return e;
            }
        }
    }
}
