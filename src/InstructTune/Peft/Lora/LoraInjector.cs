using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Peft.Qlora;

namespace InstructTune.Peft.Lora;

/// <summary>
/// Wraps every targeted Linear of a model in a <see cref="LoraLinear"/> (optionally over an NF4 copy of its
/// weight: QLoRA; or a bf16 copy: model.weight_storage bfloat16) and freezes everything else, so only lora_A/lora_B train. Initialisation draws from one
/// seeded RNG in module order, so the same seed gives the same adapter.
/// </summary>
public static class LoraInjector
{
    public static IReadOnlyList<(string Name, LoraLinear Layer)> Inject(Module model, LoraConfig config, ulong seed, bool quantizeBase = false,
        bool bf16Base = false)
    {
        if (config.Rank <= 0) throw new ArgumentException($"LoRA rank must be positive, got {config.Rank}");
        var initRng = new Rng(seed);
        var dropoutRng = new Rng(seed ^ 0x9E3779B97F4A7C15UL);
        foreach (var (_, p) in model.NamedParameters()) p.Frozen = true;

        var targets = model.NamedModules().Where(m => m.Module is Linear && config.Targets(m.Name)).Select(m => m.Name).ToList();
        if (targets.Count == 0)
            throw new ArgumentException($"LoRA target_modules [{string.Join(", ", config.TargetModules)}] match no Linear layer of the model");
        var layers = new List<(string, LoraLinear)>();
        foreach (var name in targets)
        {
            LoraLinear? made = null;
            model.ReplaceModule(name, old =>
            {
                var linear = (Linear)old;
                made = quantizeBase ? new LoraLinear(new Nf4Linear(linear), config, initRng, dropoutRng)
                    : bf16Base ? new LoraLinear(new Bf16Linear(linear), config, initRng, dropoutRng)
                    : new LoraLinear(linear, config, initRng, dropoutRng);
                return made;
            });
            if (config.UseDora) made!.InitMagnitude();
            layers.Add((name, made!));
        }
        return layers;
    }

    /// <summary>The adapted layers of a model, by module name.</summary>
    public static IReadOnlyList<(string Name, LoraLinear Layer)> Find(Module model) => MergeableLayers.Find<LoraLinear>(model);

    public static void SetEnabled(Module model, bool enabled) { foreach (var (_, l) in Find(model)) l.Enabled = enabled; }
    // (AdapterSwitch.SetEnabled switches the adapters of every method at once.)
    public static void Merge(Module model) { foreach (var (_, l) in Find(model)) l.Merge(); }
    public static void Unmerge(Module model) { foreach (var (_, l) in Find(model)) l.Unmerge(); }

    /// <summary>Merges every adapter into its base and puts the plain Linear back (for writing a full checkpoint).</summary>
    public static void MergeAndUnload(Module model)
    {
        foreach (var (name, layer) in Find(model))
        {
            Linear plain;
            if (layer.Base != null) { layer.Merge(); plain = layer.Base; }
            else
            {
                var q = layer.QuantizedBase!;
                plain = new Linear(q.InFeatures, q.OutFeatures, q.Bias != null);
                plain.Weight.Load(q.Dequantize());
                if (q.Bias != null) plain.Bias!.Load(q.Bias.Span);
                layer.MergeInto(plain.Weight.Span);   // W += scale·B·A (DoRA: then rows × m/‖W + scale·B·A‖)
            }
            plain.Weight.Frozen = false;
            if (plain.Bias != null) plain.Bias.Frozen = false;
            model.ReplaceModule(name, _ => plain);
        }
    }
}
