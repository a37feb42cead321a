using InstructTune.Engine.Modules;

namespace InstructTune.Peft.Iasft;

/// <summary>
/// Wraps each targeted Linear that has selected entries in a <see cref="SparseDeltaLinear"/> and freezes everything
/// else, so only the k delta values train.
/// </summary>
public static class IasftInjector
{
    /// <summary>Injects deltas at <paramref name="masks"/> (module name → ascending flat indices; empty = none).</summary>
    public static IReadOnlyList<(string Name, SparseDeltaLinear Layer)> Inject(Module model, IReadOnlyList<(string Name, int[] Index)> masks)
    {
        foreach (var (_, p) in model.NamedParameters()) p.Frozen = true;
        var layers = new List<(string, SparseDeltaLinear)>();
        foreach (var (name, index) in masks)
        {
            if (index.Length == 0) continue;
            SparseDeltaLinear? made = null;
            model.ReplaceModule(name, old => made = old is Linear l ? new SparseDeltaLinear(l, index)
                : throw new ArgumentException($"module '{name}' is a {old.GetType().Name}, not a Linear"));
            layers.Add((name, made!));
        }
        if (layers.Count == 0) throw new ArgumentException("no weight entry was selected");
        return layers;
    }

    public static IReadOnlyList<(string Name, SparseDeltaLinear Layer)> Find(Module model) =>
        model.NamedModules().Where(m => m.Module is SparseDeltaLinear).Select(m => (m.Name, (SparseDeltaLinear)m.Module)).ToList();

    public static void Merge(Module model) { foreach (var (_, l) in Find(model)) l.Merge(); }
    public static void Unmerge(Module model) { foreach (var (_, l) in Find(model)) l.Unmerge(); }

    /// <summary>Adds every delta into its base weight and puts the plain Linear back.</summary>
    public static void MergeAndUnload(Module model)
    {
        foreach (var (name, layer) in Find(model))
        {
            layer.Merge();
            layer.Base.Weight.Frozen = false;
            if (layer.Base.Bias != null) layer.Base.Bias.Frozen = false;
            model.ReplaceModule(name, _ => layer.Base);
        }
    }
}
