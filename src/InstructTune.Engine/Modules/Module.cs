// A node of the model tree: named parameters and named child modules, in registration order, giving
// Hugging Face's hierarchical names (model.layers.0.self_attn.q_proj.weight). Children can be replaced by
// name (adapters wrap a Linear this way), and parameters found, read and overwritten by name (checkpoints).
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Modules;

/// <summary>A module with one tensor input and one tensor output (Linear and whatever wraps it, e.g. LoRA).</summary>
public interface IUnaryModule
{
    Tensor Forward(Tensor x);
}

public abstract class Module
{
    private readonly List<string> parameterNames = [];
    private readonly Dictionary<string, Parameter?> parameters = [];
    private readonly List<string> childNames = [];
    private readonly Dictionary<string, Module> children = [];

    protected Parameter RegisterParameter(string name, Parameter p) { AddParameter(name, p); return p; }

    /// <summary>Declares an optional parameter slot (e.g. a bias that this config does not have).</summary>
    protected void RegisterAbsentParameter(string name) => AddParameter(name, null);

    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        if (name.Contains('.') || !children.TryAdd(name, module))
            throw new ArgumentException($"{GetType().Name}: child name '{name}' is a duplicate or contains '.'");
        childNames.Add(name);
        return module;
    }

    /// <summary>The direct child registered under name.</summary>
    protected Module Child(string name) => children[name];

    /// <summary>The direct child as a one-input module (a Linear, or an adapter wrapping one).</summary>
    protected IUnaryModule Unary(string name) => (IUnaryModule)children[name];

    /// <summary>Every trainable and frozen parameter with its full name; a shared (tied) parameter appears once, under its first name.</summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters(string prefix = "")
    {
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (name, p) in AllNamedParameters(prefix))
            if (seen.Add(p)) yield return (name, p);
    }

    /// <summary>All (name, parameter) pairs including repeated names of shared parameters (e.g. a tied lm_head.weight).</summary>
    public IEnumerable<(string Name, Parameter Parameter)> AllNamedParameters(string prefix = "")
    {
        foreach (var n in parameterNames)
            if (parameters[n] is { } p) yield return (prefix + n, p);
        foreach (var c in childNames)
            foreach (var item in children[c].AllNamedParameters(prefix + c + "."))
                yield return item;
    }

    public IEnumerable<Parameter> Parameters() => NamedParameters().Select(x => x.Parameter);

    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix.TrimEnd('.'), this);
        foreach (var c in childNames)
            foreach (var item in children[c].NamedModules(prefix + c + "."))
                yield return item;
    }

    /// <summary>The parameter with this full name (tied names resolve to the shared tensor).</summary>
    public Parameter GetParameter(string name)
    {
        int dot = name.LastIndexOf('.');
        var owner = dot < 0 ? this : GetModule(name[..dot]);
        string leaf = dot < 0 ? name : name[(dot + 1)..];
        if (owner.parameters.TryGetValue(leaf, out var p) && p != null) return p;
        throw new KeyNotFoundException($"{GetType().Name}: no parameter named '{name}'");
    }

    public bool TryGetParameter(string name, out Parameter? p)
    {
        try { p = GetParameter(name); return true; }
        catch (KeyNotFoundException) { p = null; return false; }
    }

    /// <summary>Overwrites a parameter's values by name; the element count must match its shape.</summary>
    public void SetParameter(string name, ReadOnlySpan<float> values) => GetParameter(name).Load(values);

    /// <summary>The module at a dotted path ("model.layers.0.self_attn").</summary>
    public Module GetModule(string path)
    {
        var m = this;
        foreach (var part in path.Split('.'))
            if (!m.children.TryGetValue(part, out m!))
                throw new KeyNotFoundException($"{GetType().Name}: no module named '{path}' (missing '{part}')");
        return m;
    }

    /// <summary>
    /// Replaces the module at a dotted path with replace(old), e.g. wrapping "model.layers.0.self_attn.q_proj" in a
    /// LoRA layer. The parent keeps the name; parameters of the new module appear under it.
    /// </summary>
    public void ReplaceModule(string path, Func<Module, Module> replace)
    {
        int dot = path.LastIndexOf('.');
        var parent = dot < 0 ? this : GetModule(path[..dot]);
        string leaf = dot < 0 ? path : path[(dot + 1)..];
        if (!parent.children.TryGetValue(leaf, out var old))
            throw new KeyNotFoundException($"{GetType().Name}: no module named '{path}'");
        var repl = replace(old);
        if (old is IUnaryModule && repl is not IUnaryModule)
            throw new ArgumentException($"ReplaceModule: '{path}' is a one-input module; its replacement {repl.GetType().Name} must implement IUnaryModule");
        parent.children[leaf] = repl;
    }

    /// <summary>Clears every parameter gradient (call after each optimizer step).</summary>
    public void ZeroGrad() { foreach (var p in Parameters()) p.ZeroGrad(); }

    private void AddParameter(string name, Parameter? p)
    {
        if (name.Contains('.') || !parameters.TryAdd(name, p))
            throw new ArgumentException($"{GetType().Name}: parameter name '{name}' is a duplicate or contains '.'");
        parameterNames.Add(name);
    }
}
