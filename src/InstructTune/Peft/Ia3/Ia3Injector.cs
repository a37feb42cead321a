using InstructTune.Engine.Modules;

namespace InstructTune.Peft.Ia3;

/// <summary>
/// Wraps every targeted Linear in an <see cref="Ia3Linear"/> and freezes everything else, so only the ia3_l vectors
/// train. A feedforward module that is not a target is refused, as PEFT refuses it.
/// </summary>
public static class Ia3Injector
{
    public static IReadOnlyList<(string Name, Ia3Linear Layer)> Inject(Module model, Ia3Config config)
    {
        foreach (var (_, p) in model.NamedParameters()) p.Frozen = true;
        var linears = model.NamedModules().Where(m => m.Module is Linear).Select(m => m.Name).ToList();
        var targets = linears.Where(config.Targets).ToList();
        if (targets.Count == 0)
            throw new ArgumentException($"IA3 target_modules [{string.Join(", ", config.TargetModules)}] match no Linear layer of the model");
        foreach (var ff in config.FeedforwardModules)
            if (!targets.Any(t => new Ia3Config { FeedforwardModules = [ff] }.IsFeedforward(t)))
                throw new ArgumentException($"IA3 feedforward_modules entry '{ff}' is not among the adapted target_modules");
        var layers = new List<(string, Ia3Linear)>();
        foreach (var name in targets)
        {
            Ia3Linear? made = null;
            model.ReplaceModule(name, old => made = new Ia3Linear((Linear)old, config.IsFeedforward(name)));
            layers.Add((name, made!));
        }
        return layers;
    }

    public static IReadOnlyList<(string Name, Ia3Linear Layer)> Find(Module model) => MergeableLayers.Find<Ia3Linear>(model);

    public static void Merge(Module model) => MergeableLayers.Merge<Ia3Linear>(model);
    public static void Unmerge(Module model) => MergeableLayers.Unmerge<Ia3Linear>(model);

    /// <summary>Merges every vector into its base weight and puts the plain Linear back.</summary>
    public static void MergeAndUnload(Module model) => MergeableLayers.MergeAndUnload<Ia3Linear>(model);
}
