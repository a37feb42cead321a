// The adapter layers that wrap a plain float Linear and merge into its weight in place (IA3's scaling vectors,
// IaSFT's sparse delta): finding them, merging, and putting the plain Linear back, in one place for both methods.
using InstructTune.Engine.Modules;

namespace InstructTune.Peft;

/// <summary>An adapter layer over a float <see cref="Linear"/> that can add itself into that weight and take itself out.</summary>
public interface IMergeableLinear : IAdapterLayer
{
    Linear Base { get; }
    void Merge();
    void Unmerge();
}

internal static class MergeableLayers
{
    /// <summary>The layers of type <typeparamref name="T"/> in the model, by module name.</summary>
    public static IReadOnlyList<(string Name, T Layer)> Find<T>(Module model) where T : Module =>
        model.NamedModules().Where(m => m.Module is T).Select(m => (m.Name, (T)m.Module)).ToList();

    public static void Merge<T>(Module model) where T : Module, IMergeableLinear { foreach (var (_, l) in Find<T>(model)) l.Merge(); }
    public static void Unmerge<T>(Module model) where T : Module, IMergeableLinear { foreach (var (_, l) in Find<T>(model)) l.Unmerge(); }

    /// <summary>Merges every layer into its base weight and puts the plain, trainable-again Linear back.</summary>
    public static void MergeAndUnload<T>(Module model) where T : Module, IMergeableLinear
    {
        foreach (var (name, layer) in Find<T>(model))
        {
            layer.Merge();
            layer.Base.Weight.Frozen = false;
            if (layer.Base.Bias != null) layer.Base.Bias.Frozen = false;
            model.ReplaceModule(name, _ => layer.Base);
        }
    }
}
