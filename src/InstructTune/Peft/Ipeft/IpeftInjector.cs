using System.Text.RegularExpressions;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Models;

namespace InstructTune.Peft.Ipeft;

/// <summary>Attaches the gate head (`ipeft_gate`) and wraps each targeted decoder-layer projection in an
/// <see cref="IpeftLinear"/>; everything else is frozen.</summary>
public static class IpeftInjector
{
    public const string GateName = "ipeft_gate";

    public static IReadOnlyList<(string Name, IpeftLinear Layer)> Inject(LlamaModel model, IpeftConfig config, ulong seed)
    {
        if (config.Rank < 1) throw new ArgumentException($"rank {config.Rank} must be at least 1");
        foreach (var (_, p) in model.NamedParameters()) p.Frozen = true;
        var targets = model.NamedModules().Where(m => m.Module is Linear && config.Targets(m.Name)).Select(m => m.Name).ToList();
        if (targets.Count == 0) throw new ArgumentException($"target_modules [{string.Join(", ", config.TargetModules)}] match no Linear layer of the model");
        foreach (var t in targets)
            if (LayerOf(t) < 0) throw new ArgumentException($"'{t}' is not a projection of a decoder layer; iPEFT's gates are per decoder layer");
        var gate = new IpeftGate(model.Config.NumHiddenLayers, model.Config.HiddenSize);
        model.AttachConditioner(GateName, gate);
        var rng = new Rng(seed ^ 0x1BEEF7UL);
        var layers = new List<(string, IpeftLinear)>();
        foreach (var name in targets)
        {
            IpeftLinear? made = null;
            model.ReplaceModule(name, old => made = new IpeftLinear((Linear)old, gate, LayerOf(name), config.Rank, config.Scale, rng));
            layers.Add((name, made!));
        }
        return layers;
    }

    /// <summary>The decoder layer index of "model.layers.N.…", or −1.</summary>
    public static int LayerOf(string module) =>
        Regex.Match(module, @"^model\.layers\.(\d+)\.(self_attn|mlp)\.") is { Success: true } m ? int.Parse(m.Groups[1].Value) : -1;

    public static IReadOnlyList<(string Name, IpeftLinear Layer)> Find(Module model) =>
        model.NamedModules().Where(m => m.Module is IpeftLinear).Select(m => (m.Name, (IpeftLinear)m.Module)).ToList();
}
