namespace InstructTune.Templates.Jinja;

/// <summary>jinja2's tests (`x is defined`, `x is string`, `x is equalto y` …).</summary>
public static class JinjaTests
{
    public static bool Apply(string name, object? v, IReadOnlyList<object?> args, Interpreter interp)
    {
        object? A(int i) => i < args.Count ? args[i] : throw new TemplateRuntimeException($"test '{name}' needs an argument");
        return name switch
        {
            "defined" => v is not Undefined,
            "undefined" => v is Undefined,
            "none" => v is null,
            "boolean" => v is bool,
            "true" => v is true,
            "false" => v is false,
            "string" => Py.IsString(v),
            "number" => v is long or double or bool,
            "integer" => v is long,
            "float" => v is double,
            "mapping" => v is Dictionary<object, object?>,
            // Python: iter() works on str, list, tuple, dict and jinja2's Undefined.
            "iterable" => v is string or TaggedText or List<object?> or JTuple or Dictionary<object, object?> or Undefined,
            "sequence" => v is string or TaggedText or List<object?> or JTuple or Dictionary<object, object?> or Undefined,
            "callable" => v is ICallableValue,
            "eq" or "equalto" or "==" => Py.Eq(v, A(0)),
            "ne" or "!=" => !Py.Eq(v, A(0)),
            "lt" or "lessthan" or "<" => Py.Compare(v, A(0), "<") < 0,
            "le" or "<=" => Py.Compare(v, A(0), "<=") <= 0,
            "gt" or "greaterthan" or ">" => Py.Compare(v, A(0), ">") > 0,
            "ge" or ">=" => Py.Compare(v, A(0), ">=") >= 0,
            "in" => Operators.Contains(A(0), v),
            "sameas" => ReferenceEquals(v, A(0)) || (v is null && A(0) is null) || (v is bool b && A(0) is bool c && b == c),
            // Python: value % 2 == 1, value % 2 == 0, value % num == 0 (floats allowed).
            "odd" => Py.Eq(Operators.Binary("%", v, 2L, interp.Limits), 1L),
            "even" => Py.Eq(Operators.Binary("%", v, 2L, interp.Limits), 0L),
            "divisibleby" => Py.Eq(Operators.Binary("%", v, A(0), interp.Limits), 0L),
            // Python: str(value).islower() / isupper(): needs a cased character.
            "lower" => Methods.IsLower(Py.Str(v)),
            "upper" => Methods.IsUpper(Py.Str(v)),
            "escaped" => false,
            "filter" => JinjaFilters.Exists(Py.Text(v)),
            "test" => Exists(Py.Text(v)),
            _ => throw new TemplateRuntimeException($"no test named '{name}'"),
        };
    }

    private static readonly HashSet<string> Names =
        ["defined", "undefined", "none", "boolean", "true", "false", "string", "number", "integer", "float", "mapping", "iterable",
         "sequence", "callable", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge",
         ">=", "in", "sameas", "odd", "even", "divisibleby", "lower", "upper", "escaped", "filter", "test"];

    public static bool Exists(string name) => Names.Contains(name);
}
