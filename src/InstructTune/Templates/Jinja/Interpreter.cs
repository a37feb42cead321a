using System.Text;

namespace InstructTune.Templates.Jinja;

/// <summary>
/// Walks the syntax tree and writes output with provenance. Scoping follows jinja2: a for-loop body gets a
/// fresh scope on every iteration (assignments inside it do not survive the iteration or leak out), macros
/// get their own scope whose parent is the scope they were defined in, if-blocks share their scope.
/// </summary>
public sealed class Interpreter
{
    private enum Flow { Normal, Break, Continue }

    private sealed class Scope(Scope? parent)
    {
        public readonly Dictionary<string, object?> Vars = new(StringComparer.Ordinal);
        public readonly Scope? Parent = parent;
    }

    /// <summary>Rendered text with tags, limited in length.</summary>
    internal sealed class Output(int limit)
    {
        public readonly StringBuilder Text = new();
        public readonly List<TextTag> Tags = [];

        public void Append(object? strValue)
        {
            string s = strValue is TaggedText t ? t.Text : (string)strValue!;
            if (Text.Length + (long)s.Length > limit)
                throw new TemplateRuntimeException($"output exceeds the limit of {limit} characters");
            if (strValue is TaggedText tagged)
                foreach (var tag in tagged.Tags) TaggedText.Append(Tags, tag with { Start = tag.Start + Text.Length });
            Text.Append(s);
        }

        public object ToValue()
        {
            var text = Text.ToString();
            return Tags.Count == 0 ? text : new TaggedText(text, [.. Tags]);
        }
    }

    private readonly IReadOnlyDictionary<string, object?> _globals;
    internal RenderLimits Limits { get; }
    internal Func<DateTime> Clock { get; }
    private int _iterations;
    private bool _folding;
    private int _callDepth;
    private Output? _root;

    /// <summary>[Start, End) of the root output written inside <c>{% generation %}</c> blocks, in order (transformers'
    /// assistant-token mask). Blocks inside set-blocks or macros do not reach the root output and are not recorded.</summary>
    public List<(int Start, int End)> GenerationRanges { get; } = [];
    private long _calls;
    private bool _tooDeep;

    public Interpreter(IReadOnlyDictionary<string, object?> globals, RenderLimits limits, Func<DateTime> clock)
    {
        _globals = globals;
        Limits = limits;
        Clock = clock;
    }

    /// <summary>The size limit of the render running on this thread, for printers (repr, tojson) deep in the value model.</summary>
    [ThreadStatic] private static int? _activeMaxOutput;
    internal static int ActiveMaxOutput => _activeMaxOutput ?? RenderLimits.Default.MaxOutputLength;

    /// <summary>Refuses a string or list of <paramref name="size"/> items before it is allocated (padding widths,
    /// replacements, indents): the size limit is checked first, so the error costs no memory.</summary>
    internal static int CheckSize(long size, string what)
    {
        if (size > ActiveMaxOutput)
            throw new TemplateRuntimeException($"{what}: a result of {size} characters exceeds the size limit of {ActiveMaxOutput}");
        return (int)Math.Max(0, size);
    }

    /// <summary>Renders the template body with the given variables; returns text (plain or tagged).</summary>
    public object Render(IReadOnlyList<Stmt> body, IReadOnlyDictionary<string, object?> variables)
    {
        var scope = new Scope(null);
        foreach (var (k, v) in variables) scope.Vars[k] = v;
        var output = new Output(Limits.MaxOutputLength);
        _root = output;
        var previous = _activeMaxOutput;
        _activeMaxOutput = Limits.MaxOutputLength;
        try { ExecBody(body, scope, output); }
        finally { _activeMaxOutput = previous; }
        return output.ToValue();
    }

    // ---- statements ----

    private Flow ExecBody(IReadOnlyList<Stmt> body, Scope scope, Output output)
    {
        foreach (var stmt in body)
        {
            Flow f;
            try { f = Exec(stmt, scope, output); }
            catch (TemplateRuntimeException e) when (e.Data["line"] is null)
            {
                e.Data["line"] = stmt.Line;
                throw;
            }
            if (f != Flow.Normal) return f;
        }
        return Flow.Normal;
    }

    private Flow Exec(Stmt stmt, Scope scope, Output output)
    {
        switch (stmt)
        {
            case TextStmt t: output.Append(t.Text); return Flow.Normal;
            case OutputStmt o:
                output.Append(Py.StrValue(TryFold(o.Value, scope, out var folded) ? folded : Eval(o.Value, scope)));
                return Flow.Normal;
            case IfStmt i:
                foreach (var (test, body) in i.Branches)
                    if (Py.Truthy(Eval(test, scope))) return ExecBody(body, scope, output);
                return i.Else is null ? Flow.Normal : ExecBody(i.Else, scope, output);
            case ForStmt f: ExecFor(f, scope, output); return Flow.Normal;
            case SetStmt s: Assign(s.Target, Eval(s.Value, scope), scope); return Flow.Normal;
            case SetBlockStmt sb:
            {
                var captured = new Output(Limits.MaxOutputLength);
                ExecBody(sb.Body, new Scope(scope), captured);
                object? value = captured.ToValue();
                foreach (var filter in sb.Filters) value = ApplyFilter(filter, value, scope);
                Assign(sb.Target, value, scope);
                return Flow.Normal;
            }
            case MacroStmt m: scope.Vars[m.Name] = new Macro(m.Name, m.Params, m.Body, scope, this); return Flow.Normal;
            case CallBlockStmt c:
            {
                var caller = new Macro("caller", c.Params, c.Body, scope, this);
                var callee = Eval(c.Call.Callee, scope);
                var (args, kwargs) = EvalArgs(c.Call.Args, c.Call.Kwargs, scope);
                var kw = new Dictionary<string, object?>(kwargs) { ["caller"] = caller };
                output.Append(Py.StrValue(CallValue(callee, args, kw)));
                return Flow.Normal;
            }
            case FilterBlockStmt fb:
            {
                var captured = new Output(Limits.MaxOutputLength);
                ExecBody(fb.Body, new Scope(scope), captured);
                object? value = captured.ToValue();
                foreach (var filter in fb.Filters) value = ApplyFilter(filter, value, scope);
                output.Append(Py.StrValue(value));
                return Flow.Normal;
            }
            case WithStmt w:
            {
                var inner = new Scope(scope);
                foreach (var (target, value) in w.Assignments) Assign(target, Eval(value, scope), inner);
                return ExecBody(w.Body, inner, output);
            }
            case GenerationStmt g:
            {
                int start = output.Text.Length;
                var flow = ExecBody(g.Body, scope, output);
                if (ReferenceEquals(output, _root) && output.Text.Length > start) GenerationRanges.Add((start, output.Text.Length));
                return flow;
            }
            case BreakStmt: return Flow.Break;
            case ContinueStmt: return Flow.Continue;
            default: throw new TemplateRuntimeException($"unsupported statement {stmt.GetType().Name}");
        }
    }

    private void ExecFor(ForStmt f, Scope scope, Output output)
    {
        if (f.Recursive) throw new TemplateRuntimeException("recursive for loops are not supported");
        var source = Iterate(Eval(f.Iter, scope));
        List<object?> items;
        if (f.Filter is null) items = source;
        else
        {
            items = [];
            foreach (var item in source)
            {
                CountIteration();
                var s = new Scope(scope);
                Assign(f.Target, item, s);
                if (Py.Truthy(Eval(f.Filter, s))) items.Add(item);
            }
        }
        // jinja2 counts depth only for recursive loops, which are not supported, so it is always 1.
        var loop = new LoopInfo(items);
        // jinja2 clears its "else" flag at the end of the loop body, so the else block runs unless some
        // iteration ran to the end of the body (an iteration cut short by continue or break does not count).
        bool completedAnIteration = false;
        for (int i = 0; i < items.Count; i++)
        {
            CountIteration();
            loop.Index0 = i;
            var iterScope = new Scope(scope);
            Assign(f.Target, items[i], iterScope);
            iterScope.Vars["loop"] = loop;
            var flow = ExecBody(f.Body, iterScope, output);
            if (flow == Flow.Normal) completedAnIteration = true;
            if (flow == Flow.Break) break;
        }
        if (!completedAnIteration && f.Else is not null) ExecBody(f.Else, new Scope(scope), output);
    }

    private void CountIteration()
    {
        if (++_iterations > Limits.MaxLoopIterations)
            throw new TemplateRuntimeException($"loop iterations exceed the limit of {Limits.MaxLoopIterations}");
    }

    private void Assign(Expr target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameRef n: scope.Vars[n.Name] = value; break;
            case GetAttr { Target: NameRef ns } a:
                if (Lookup(scope, ns.Name) is not Namespace space)
                    throw new TemplateRuntimeException($"cannot assign attribute on non-namespace object '{ns.Name}'");
                space.Attributes[a.Attribute] = value;
                break;
            case TupleExpr t:
            {
                var values = Iterate(value);
                if (values.Count != t.Items.Count)
                    throw new TemplateRuntimeException(values.Count > t.Items.Count
                        ? $"too many values to unpack (expected {t.Items.Count})"
                        : $"not enough values to unpack (expected {t.Items.Count}, got {values.Count})");
                for (int i = 0; i < values.Count; i++) Assign(t.Items[i], values[i], scope);
                break;
            }
            default: throw new TemplateRuntimeException("cannot assign to this expression");
        }
    }

    private object? Lookup(Scope scope, string name)
    {
        for (var s = scope; s != null; s = s.Parent)
            if (s.Vars.TryGetValue(name, out var v)) return v;
        if (_globals.TryGetValue(name, out var g)) return g;
        return new Undefined($"'{name}' is undefined");
    }

    // ---- expressions ----

    private object? Eval(Expr e, Scope scope)
    {
        // The parser bounds nesting; long operator chains (1+1+…+1) still make deep trees: stop before the stack does.
        if (!System.Runtime.CompilerServices.RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            _tooDeep = true;   // not a foldable failure: constant folding must not retry every sub-tree (quadratic)
            throw new TemplateRuntimeException("expression nested too deeply to evaluate");
        }
        // jinja2 folds constant sub-expressions at compile time when the value has a safe repr; emulate that
        // so that the one place where folding changes the result (slicing a non-sequence) agrees.
        if (!_folding && e is not Literal && TryFold(e, scope, out var folded) && HasSafeRepr(folded)) return folded;
        switch (e)
        {
            case Literal l: return l.Value;
            case NameRef n: return _folding ? throw NotConstant : Lookup(scope, n.Name);
            case ListExpr l:
            {
                var list = new List<object?>(l.Items.Count);
                foreach (var item in l.Items) list.Add(Eval(item, scope));
                return list;
            }
            case TupleExpr t:
            {
                var items = new object?[t.Items.Count];
                for (int i = 0; i < items.Length; i++) items[i] = Eval(t.Items[i], scope);
                return new JTuple(items);
            }
            case DictExpr d:
            {
                var dict = new Dictionary<object, object?>();
                foreach (var (k, v) in d.Items) dict[Py.Key(Eval(k, scope))] = Eval(v, scope);
                return dict;
            }
            case GetAttr a: return Access.GetAttr(Eval(a.Target, scope), a.Attribute);
            case GetItem g:
            {
                var target = Eval(g.Target, scope);
                if (g.Index is SliceExpr s)
                    return Access.Slice(target, EvalOpt(s.Start, scope), EvalOpt(s.Stop, scope), EvalOpt(s.Step, scope), _folding);
                return Access.GetItem(target, Eval(g.Index, scope));
            }
            case CallExpr c:
            {
                if (_folding) throw NotConstant; // calls are never folded in the sandbox
                var callee = Eval(c.Callee, scope);
                var (args, kwargs) = EvalArgs(c.Args, c.Kwargs, scope);
                return CallValue(callee, args, kwargs);
            }
            case FilterExpr f:
                if (_folding && ContextFilters.Contains(f.Name)) throw NotConstant;
                return ApplyFilter(f, Eval(f.Target!, scope), scope);
            case TestExpr t:
            {
                var value = Eval(t.Target, scope);
                var args = t.Args.Select(a => Eval(a, scope)).ToList();
                bool r = JinjaTests.Apply(t.Name, value, args, this);
                return t.Negated ? !r : r;
            }
            case UnaryExpr u:
            {
                var v = Eval(u.Operand, scope);
                return u.Op switch
                {
                    "not" => !Py.Truthy(v),
                    "-" => v switch { long l => (object)(-l), double d => -d, bool b => b ? -1L : 0L, _ => throw Operand("unary -", v) },
                    _ => v switch { long or double => v, bool b => (object)(b ? 1L : 0L), _ => throw Operand("unary +", v) },
                };
            }
            case BinaryExpr b:
            {
                if (b.Op == "and") { var l = Eval(b.Left, scope); return Py.Truthy(l) ? Eval(b.Right, scope) : l; }
                if (b.Op == "or") { var l = Eval(b.Left, scope); return Py.Truthy(l) ? l : Eval(b.Right, scope); }
                return Operators.Binary(b.Op, Eval(b.Left, scope), Eval(b.Right, scope), Limits);
            }
            case CompareExpr c:
            {
                var left = Eval(c.First, scope);
                foreach (var (op, rightExpr) in c.Rest)
                {
                    var right = Eval(rightExpr, scope);
                    if (!Operators.Compare(op, left, right)) return false;
                    left = right;
                }
                return true;
            }
            case CondExpr c:
                if (Py.Truthy(Eval(c.Test, scope))) return Eval(c.Then, scope);
                return c.Else is null ? new Undefined("the inline if-expression evaluated to false and no else section was defined") : Eval(c.Else, scope);
            default: throw new TemplateRuntimeException($"unsupported expression {e.GetType().Name}");
        }
    }

    /// <summary>
    /// Whether jinja2's optimiser would fold this {{ … }} expression at compile time: no variables and no calls
    /// (calls are never folded in the sandbox). Only the slicing of non-sequences behaves differently then.
    /// </summary>
    /// <summary>What jinja2's as_const would give for a node: nothing (it reads variables or calls), a value, or an error.</summary>
    private sealed record Folded(bool IsConstant, object? Value, bool Failed);

    // Folding reads no variables, so its outcome is the same on every render of every template: cache it per node.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Expr, Folded> FoldCache = new();

    /// <summary>Thrown inside folding when the expression needs a variable, a call or a context filter.</summary>
    private sealed class NotConstantException : Exception;
    private static readonly NotConstantException NotConstant = new();

    // Filters that take the context (pass_context) are never folded.
    private static readonly HashSet<string> ContextFilters = ["map", "select", "reject", "selectattr", "rejectattr"];

    /// <summary>
    /// Emulates jinja2's compile-time constant folding (nodes' as_const, which short-circuits conditionals and
    /// and/or exactly like evaluation does). It matters in one place: slicing a non-sequence gives Undefined when
    /// folded but a TypeError at run time.
    /// </summary>
    private bool TryFold(Expr e, Scope scope, out object? value)
    {
        if (!FoldCache.TryGetValue(e, out var f))
        {
            bool was = _folding;
            _folding = true;
            try { f = new Folded(true, Eval(e, scope), false); }
            catch (NotConstantException) { f = new Folded(false, null, false); }
            catch (TemplateRuntimeException) when (!_tooDeep) { f = new Folded(true, null, true); }
            catch (JinjaGlobals.RaisedException) { f = new Folded(false, null, false); }
            finally { _folding = was; }
            FoldCache.AddOrUpdate(e, f);
        }
        value = f.Value;
        return f.IsConstant && !f.Failed;
    }

    private static bool HasSafeRepr(object? v) => v switch
    {
        null or bool or long or double or string or TaggedText => true,
        List<object?> l => l.All(HasSafeRepr),
        JTuple t => t.Items.All(HasSafeRepr),
        Dictionary<object, object?> d => d.All(kv => HasSafeRepr(Py.FromKey(kv.Key)) && HasSafeRepr(kv.Value)),
        _ => false,
    };

    private object? EvalOpt(Expr? e, Scope scope) => e is null ? null : Eval(e, scope);

    private (List<object?>, Dictionary<string, object?>) EvalArgs(IReadOnlyList<Expr> args, IReadOnlyList<(string Name, Expr Value)> kwargs, Scope scope)
    {
        var a = new List<object?>(args.Count);
        foreach (var x in args) a.Add(Eval(x, scope));
        var kw = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in kwargs) kw[name] = Eval(value, scope);
        return (a, kw);
    }

    private object? ApplyFilter(FilterExpr f, object? value, Scope scope)
    {
        var (args, kwargs) = EvalArgs(f.Args, f.Kwargs, scope);
        return JinjaFilters.Apply(f.Name, value, args, kwargs, this);
    }

    internal object? CallValue(object? callee, IReadOnlyList<object?> args, IReadOnlyDictionary<string, object?> kwargs)
    {
        if (callee is Undefined u) throw new TemplateRuntimeException(u.Hint);
        if (callee is not ICallableValue c) throw new TemplateRuntimeException($"'{Py.TypeName(callee)}' object is not callable");
        // Depth alone does not bound work: a macro calling itself twice per level makes 2^depth calls.
        if (++_calls > Limits.MaxCalls)
            throw new TemplateRuntimeException($"calls exceed the limit of {Limits.MaxCalls} in one render (runaway recursion?)");
        if (++_callDepth > Limits.MaxCallDepth)
        {
            _callDepth = 0;
            throw new TemplateRuntimeException($"call depth exceeds the limit of {Limits.MaxCallDepth} (runaway recursion?)");
        }
        try { return c.Call(this, args, kwargs); }
        finally { if (_callDepth > 0) _callDepth--; }
    }

    private static TemplateRuntimeException Operand(string op, object? v) =>
        new($"bad operand type for {op}: '{Py.TypeName(v)}'");

    /// <summary>Python iteration as a list: list/tuple items, dict keys, string characters, Undefined → empty.</summary>
    internal List<object?> Iterate(object? v)
    {
        switch (v)
        {
            case Undefined: return [];
            case List<object?> l: return [.. l];
            case JTuple t: return [.. t.Items];
            case Dictionary<object, object?> d: return d.Keys.Select(Py.FromKey).ToList();
            case string or TaggedText:
            {
                var s = Py.Text(v);
                var chars = new List<object?>(s.Length);
                var offsets = CodePoints.Offsets(s);
                int n = offsets is null ? s.Length : offsets.Length - 1;
                for (int i = 0; i < n; i++) chars.Add(CodePoints.Slice(v, offsets, i, 1));
                return chars;
            }
            case RangeValue r:
                if (r.Count > Limits.MaxLoopIterations)
                    throw new TemplateRuntimeException($"range of {r.Count} items exceeds the loop iteration limit of {Limits.MaxLoopIterations}");
                return r.ToList();
            default: throw new TemplateRuntimeException($"'{Py.TypeName(v)}' object is not iterable");
        }
    }

    /// <summary>A template macro: renders its body in a new scope with its parameters bound.</summary>
    private sealed class Macro(string name, IReadOnlyList<(string Name, Expr? Default)> ps, IReadOnlyList<Stmt> body, Scope closure, Interpreter owner) : ICallableValue
    {
        public object? Call(Interpreter interp, IReadOnlyList<object?> args, IReadOnlyDictionary<string, object?> kwargs)
        {
            var scope = new Scope(closure);
            var varargs = new List<object?>();
            for (int i = 0; i < args.Count; i++)
            {
                if (i < ps.Count) scope.Vars[ps[i].Name] = args[i];
                else varargs.Add(args[i]);
            }
            var extra = new Dictionary<object, object?>();
            foreach (var (k, v) in kwargs)
            {
                if (k == "caller" || ps.Any(p => p.Name == k)) scope.Vars[k] = v;
                else extra[k] = v;
            }
            for (int i = 0; i < ps.Count; i++)
                if (!scope.Vars.ContainsKey(ps[i].Name))
                    scope.Vars[ps[i].Name] = ps[i].Default is null
                        ? new Undefined($"parameter '{ps[i].Name}' was not provided") : owner.Eval(ps[i].Default!, scope);
            scope.Vars["varargs"] = new JTuple(varargs);
            scope.Vars["kwargs"] = extra;
            var output = new Output(owner.Limits.MaxOutputLength);
            owner.ExecBody(body, scope, output);
            return output.ToValue();
        }
        public override string ToString() => $"<Macro '{name}'>";
    }
}

/// <summary>range(start, stop, step) without materialising it until iterated (so the size can be checked first).</summary>
public sealed class RangeValue(long start, long stop, long step)
{
    public long Count => step > 0 ? Math.Max(0, (stop - start + step - 1) / step) : Math.Max(0, (start - stop - step - 1) / -step);
    public List<object?> ToList()
    {
        var list = new List<object?>((int)Count);
        for (long i = 0, v = start; i < Count; i++, v += step) list.Add(v);
        return list;
    }
}
