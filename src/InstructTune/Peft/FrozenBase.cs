// model.weight_storage: bfloat16 — the frozen base weights of a PEFT run held as bf16 instead of float32. LoRA's
// targeted layers get a bf16 base at injection (LoraInjector, bf16Base); this converts every other frozen Linear of
// the model (attention and MLP projections no adapter wraps, an untied lm_head) to a Bf16Linear. Both compute with
// Gemm.SgemmBf16B, the kernel of the engine's bf16 inference path (bf16 weights widened to float32 in packing,
// float32 activations and accumulation). Trainable parameters (adapters, any fully trained weight) keep float32
// master weights; the embedding table, norms and biases stay float32, and a Linear tied to the embedding is kept.
using InstructTune.Engine.Modules;
using InstructTune.Peft.Lora;

namespace InstructTune.Peft;

public static class FrozenBase
{
    /// <summary>Replaces every frozen Linear (weight and bias frozen, weight not shared with an embedding) by a
    /// <see cref="Bf16Linear"/>; returns how many layers were converted.</summary>
    public static int ToBf16(Module model)
    {
        var shared = model.NamedModules().Select(m => m.Module).OfType<Embedding>().Select(e => e.Weight).ToHashSet();
        var frozen = model.NamedModules()
            .Where(m => m.Module is Linear l && l.Weight.Frozen && (l.Bias == null || l.Bias.Frozen) && !shared.Contains(l.Weight))
            .Select(m => m.Name).ToList();
        foreach (var name in frozen) model.ReplaceModule(name, old => new Bf16Linear((Linear)old));
        return frozen.Count;
    }

    /// <summary>The frozen layers held in a compressed storage (bf16 or NF4): registered modules and LoRA bases.</summary>
    public static IReadOnlyList<IFrozenLinear> CompressedLayers(Module model) =>
        model.NamedModules().Select(m => m.Module).OfType<IFrozenLinear>()
            .Concat(LoraInjector.Find(model).Select(l => l.Layer.QuantizedBase).OfType<IFrozenLinear>())
            .Distinct().ToList();
}
