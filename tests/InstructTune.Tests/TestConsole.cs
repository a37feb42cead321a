using System.Runtime.CompilerServices;
using System.Text;
using InstructTune.Cli;

namespace InstructTune.Tests;

/// <summary>
/// Console capture that parallel tests cannot break. Console.Out/Error/In and AnsiConsole are process-wide; a test that
/// swaps them races with every other test writing to the console (a CI run lost a test's stderr that way). At load, the
/// test assembly installs routing writers once; <see cref="Capture"/> redirects only the calling test's logical flow
/// (an AsyncLocal, which tasks and threads it starts inherit) and everything else still reaches the real console.
/// Tests never call Console.SetOut/SetError/SetIn or set AnsiConsole.Console themselves.
/// </summary>
public static class TestConsole
{
    private static readonly AsyncLocal<Scope?> Current = new();

    [ModuleInitializer]
    internal static void Install()
    {
        var (stdout, stderr, stdin) = (Console.Out, Console.Error, Console.In);
        Console.SetOut(new Routed(stdout, s => s.Out));
        Console.SetError(new Routed(stderr, s => s.Err));
        Console.SetIn(new RoutedReader(stdin));
        Spectre.Console.AnsiConsole.Console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Out = new Spectre.Console.AnsiConsoleOutput(Console.Out),
            ColorSystem = Spectre.Console.ColorSystemSupport.NoColors,
            Ansi = Spectre.Console.AnsiSupport.No,
        });
    }

    /// <summary>Redirects this test's console (and its child tasks') to fresh writers until disposed.</summary>
    public static Scope Capture(string? stdin = null) => new(stdin);

    /// <summary>Runs itune in process with this test's console captured.</summary>
    public static (int Rc, string Out, string Err) Run(params string[] args) => Run(() => CliApp.Run(args));

    public static (int Rc, string Out, string Err) Run(Func<int> action, string? stdin = null)
    {
        using var scope = Capture(stdin);
        int rc = action();
        return (rc, scope.Out.ToString(), scope.Err.ToString());
    }

    public sealed class Scope : IDisposable
    {
        private readonly Scope? _previous;
        public StringWriter Out { get; } = new();
        public StringWriter Err { get; } = new();
        internal TextReader? In { get; }

        internal Scope(string? stdin)
        {
            In = stdin is null ? null : new StringReader(stdin);
            _previous = Current.Value;
            Current.Value = this;
        }

        public void Dispose() => Current.Value = _previous;
    }

    private sealed class Routed(TextWriter fallback, Func<Scope, TextWriter> pick) : TextWriter
    {
        private TextWriter Target => Current.Value is { } s ? pick(s) : fallback;
        public override Encoding Encoding => fallback.Encoding;
        public override void Write(char value) { var t = Target; lock (t) t.Write(value); }
        public override void Write(string? value) { var t = Target; lock (t) t.Write(value); }
        public override void Write(char[] buffer, int index, int count) { var t = Target; lock (t) t.Write(buffer, index, count); }
        public override void Write(ReadOnlySpan<char> buffer) { var t = Target; lock (t) t.Write(buffer); }
        public override void WriteLine(string? value) { var t = Target; lock (t) t.WriteLine(value); }
        public override void WriteLine() { var t = Target; lock (t) t.WriteLine(); }
        public override void Flush() { var t = Target; lock (t) t.Flush(); }
    }

    private sealed class RoutedReader(TextReader fallback) : TextReader
    {
        private TextReader Source => Current.Value?.In ?? fallback;
        public override int Peek() => Source.Peek();
        public override int Read() => Source.Read();
        public override int Read(char[] buffer, int index, int count) => Source.Read(buffer, index, count);
        public override string? ReadLine() => Source.ReadLine();
        public override string ReadToEnd() => Source.ReadToEnd();
        public override Task<string?> ReadLineAsync() => Source.ReadLineAsync();
        public override Task<string> ReadToEndAsync() => Source.ReadToEndAsync();
    }
}
