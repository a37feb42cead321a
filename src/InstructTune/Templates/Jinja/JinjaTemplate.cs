namespace InstructTune.Templates.Jinja;

/// <summary>A parsed Jinja template that renders to text with provenance tags.</summary>
public sealed class JinjaTemplate
{
    private readonly IReadOnlyList<Stmt> _body;
    private readonly Dictionary<string, object?> _globals = JinjaGlobals.Create();

    /// <summary>Parses; throws <see cref="TemplateSyntaxException"/> naming line and column.</summary>
    public JinjaTemplate(string source) { _body = JinjaParser.Parse(source); }

    public RenderLimits Limits { get; init; } = RenderLimits.Default;

    /// <summary>The clock strftime_now reads (local time, as Python's datetime.now()).</summary>
    public Func<DateTime> Clock { get; init; } = () => DateTime.Now;

    /// <summary>
    /// Renders with the given variables (values in the interpreter's value model, see JinjaValues.cs).
    /// Throws <see cref="ChatTemplateException"/> for raise_exception, limit breaches and runtime errors.
    /// </summary>
    public object Render(IReadOnlyDictionary<string, object?> variables) => Render(variables, out _);

    /// <summary>Renders, also giving the output ranges written inside <c>{% generation %}</c> blocks.</summary>
    public object Render(IReadOnlyDictionary<string, object?> variables, out IReadOnlyList<(int Start, int End)> generationRanges)
    {
        try
        {
            var interpreter = new Interpreter(_globals, Limits, Clock);
            var result = interpreter.Render(_body, variables);
            generationRanges = interpreter.GenerationRanges;
            return result;
        }
        catch (JinjaGlobals.RaisedException e)
        {
            throw new ChatTemplateException(e.Message);
        }
        catch (TemplateRuntimeException e)
        {
            var line = e.Data["line"] is int l ? $" (template line {l})" : "";
            throw new ChatTemplateException(e.Message + line);
        }
        catch (InsufficientExecutionStackException)
        {
            throw new ChatTemplateException("template nested too deeply");
        }
        catch (Exception e) when (e is InvalidCastException or ArgumentException or OverflowException or FormatException
                                      or IndexOutOfRangeException or KeyNotFoundException)
        {
            // A Python-level type error the interpreter did not word itself: still a template error, never a crash.
            throw new ChatTemplateException($"template error: {e.Message}");
        }
    }
}
