namespace InstructTune.Templates.Jinja;

/// <summary>
/// Attribute access, subscripts and slices with jinja2's sandboxed semantics: `a.b` tries a method/attribute
/// first and then the item, `a['b']` the item first and then the attribute; what is missing is Undefined;
/// methods that mutate lists or dicts are refused as unsafe (transformers renders in an
/// ImmutableSandboxedEnvironment), and anything else outside the value model is unreachable.
/// </summary>
public static class Access
{
    private static readonly HashSet<string> UnsafeMutators =
        ["append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault", "popitem", "add", "discard"];

    public static object? GetAttr(object? target, string name)
    {
        if (target is Undefined u) throw new TemplateRuntimeException(u.Hint);
        var method = Methods.Bind(target, name);
        if (method is not null) return method;
        if (target is List<object?> or Dictionary<object, object?> && UnsafeMutators.Contains(name))
            return Unsafe(target, name);
        switch (target)
        {
            case Dictionary<object, object?> d:
                return d.TryGetValue(name, out var v) ? v : new Undefined($"'dict object' has no attribute '{name}'");
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out var nv) ? nv : new Undefined($"'Namespace object' has no attribute '{name}'");
            case LoopInfo loop: return LoopAttr(loop, name);
        }
        return new Undefined($"'{DescribeType(target)}' has no attribute '{name}'");
    }

    public static object? GetItem(object? target, object? key)
    {
        if (target is Undefined u) throw new TemplateRuntimeException(u.Hint);
        switch (target)
        {
            case Dictionary<object, object?> d:
                if (d.TryGetValue(Py.Key(key), out var v)) return v;
                break;
            case List<object?> or JTuple or string or TaggedText when key is long or bool:
            {
                int n = Length(target);
                long i = Py.ToLong(key);
                if (i < 0) i += n;
                if (i >= 0 && i < n)
                    return target switch
                    {
                        List<object?> l => l[(int)i],
                        JTuple t => t.Items[(int)i],
                        _ => CodePoints.Slice(target!, CodePoints.Offsets(Py.Text(target)), (int)i, 1),
                    };
                return new Undefined($"'{DescribeType(target)}' has no element {Py.Str(key)}");
            }
            case Namespace or LoopInfo when Py.IsString(key):
                return GetAttr(target, Py.Text(key));
        }
        if (Py.IsString(key))
        {
            var name = Py.Text(key);
            var method = Methods.Bind(target, name);
            if (method is not null) return method;
            if (target is List<object?> or Dictionary<object, object?> && UnsafeMutators.Contains(name)) return Unsafe(target, name);
            return new Undefined($"'{DescribeType(target)}' has no attribute '{name}'");
        }
        return new Undefined($"'{DescribeType(target)}' has no element {Py.Repr(key)}");
    }

    private static Undefined Unsafe(object? target, string name) =>
        new($"access to attribute '{name}' of '{Py.TypeName(target)}' object is unsafe.");

    private static string DescribeType(object? v) => v is null ? "None" : Py.TypeName(v) + " object";

    public static int Length(object? v) => v switch
    {
        Undefined => 0,
        string s => CodePoints.Length(s),
        TaggedText t => CodePoints.Length(t.Text),
        List<object?> l => l.Count,
        JTuple t => t.Items.Count,
        Dictionary<object, object?> d => d.Count,
        _ => throw new TemplateRuntimeException($"object of type '{Py.TypeName(v)}' has no len()"),
    };

    /// <summary>Python slicing [start:stop:step] of strings (keeping provenance), lists and tuples.</summary>
    public static object? Slice(object? target, object? start, object? stop, object? step, bool constantFolding = false)
    {
        if (target is Undefined u) throw new TemplateRuntimeException(u.Hint);
        if (target is not (string or TaggedText or List<object?> or JTuple))
        {
            // jinja2 compiles slices to a plain Python subscript (TypeError), except where its optimiser folded a
            // constant {{ … }} expression through environment.getitem, which gives Undefined instead.
            if (constantFolding) return new Undefined($"'{DescribeType(target)}' is not sliceable");
            throw new TemplateRuntimeException($"'{Py.TypeName(target)}' object is not subscriptable");
        }
        int n = Length(target);
        long st = step is null ? 1 : Py.ToLong(step);
        if (st == 0) throw new TemplateRuntimeException("slice step cannot be zero");
        long Clamp(object? v, long dflt)
        {
            if (v is null) return dflt;
            long x = Py.ToLong(v);
            if (x < 0) x += n;
            return st > 0 ? Math.Clamp(x, 0, n) : Math.Clamp(x, -1, n - 1);
        }
        long a = Clamp(start, st > 0 ? 0 : n - 1), b = Clamp(stop, st > 0 ? n : -1);
        var idx = new List<int>();
        for (long i = a; st > 0 ? i < b : i > b; i += st) idx.Add((int)i);
        if (target is string or TaggedText)
        {
            var offsets = CodePoints.Offsets(Py.Text(target));
            if (st == 1) return CodePoints.Slice(target, offsets, (int)a, Math.Max(0, (int)(b - a)));
            return TaggedText.Concat(idx.Select(i => CodePoints.Slice(target, offsets, i, 1)));
        }
        var items = Py.AsSeq(target) ?? throw new TemplateRuntimeException($"'{Py.TypeName(target)}' object is not subscriptable");
        var result = idx.Select(i => items[i]).ToList();
        return target is JTuple ? new JTuple(result) : result;
    }

    private static object? LoopAttr(LoopInfo loop, string name)
    {
        int n = loop.Items.Count, i = loop.Index0;
        return name switch
        {
            "index" => (long)(i + 1),
            "index0" => (long)i,
            "revindex" => (long)(n - i),
            "revindex0" => (long)(n - i - 1),
            "first" => i == 0,
            "last" => i == n - 1,
            "length" => (long)n,
            "depth" => (long)(loop.Depth0 + 1),
            "depth0" => (long)loop.Depth0,
            "previtem" => i > 0 ? loop.Items[i - 1] : new Undefined("there is no previous item"),
            "nextitem" => i < n - 1 ? loop.Items[i + 1] : new Undefined("there is no next item"),
            "cycle" => new BuiltinFunction("cycle", (_, args, _) =>
                args.Count == 0 ? throw new TemplateRuntimeException("no items for cycling given") : args[i % args.Count]),
            "changed" => new BuiltinFunction("changed", (_, args, _) =>
            {
                var now = new JTuple([.. args]);
                if (loop.LastChangedArgs is JTuple prev && Py.Eq(prev, now)) return false;
                loop.LastChangedArgs = now;
                return true;
            }),
            _ => new Undefined($"'LoopContext object' has no attribute '{name}'"),
        };
    }
}
