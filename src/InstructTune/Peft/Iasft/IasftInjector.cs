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

    public static IReadOnlyList<(string Name, SparseDeltaLinear Layer)> Find(Module model) => MergeableLayers.Find<SparseDeltaLinear>(model);

    public static void Merge(Module model) => MergeableLayers.Merge<SparseDeltaLinear>(model);
    public static void Unmerge(Module model) => MergeableLayers.Unmerge<SparseDeltaLinear>(model);

    /// <summary>Adds every delta into its base weight and puts the plain Linear back.</summary>
    public static void MergeAndUnload(Module model) => MergeableLayers.MergeAndUnload<SparseDeltaLinear>(model);
}
