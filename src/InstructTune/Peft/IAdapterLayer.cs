// What every adapter layer of every PEFT method shares: a switch that turns it off, so the same model object
// computes its frozen base (PEFT's disable_adapter). Preference/feedback tuning uses this as the reference model.
using InstructTune.Engine.Modules;

namespace InstructTune.Peft;

/// <summary>An adapter layer that can be switched off (then it computes exactly its base).</summary>
public interface IAdapterLayer
{
    bool Enabled { get; set; }
}

public static class AdapterSwitch
{
    /// <summary>Turns every adapter layer of the model on or off (LoRA, DoRA, IA3, prompt and prefix tuning);
    /// returns how many layers it switched.</summary>
    public static int SetEnabled(Module model, bool enabled)
    {
        int n = 0;
        foreach (var (_, m) in model.NamedModules())
            if (m is IAdapterLayer a) { a.Enabled = enabled; n++; }
        return n;
    }

    /// <summary>Runs <paramref name="body"/> with every adapter off (the base model), then restores the previous states.</summary>
    public static T WithAdaptersDisabled<T>(Module model, Func<T> body)
    {
        var layers = model.NamedModules().Select(m => m.Module).OfType<IAdapterLayer>().ToList();
        var before = layers.Select(l => l.Enabled).ToList();
        foreach (var l in layers) l.Enabled = false;
        try { return body(); }
        finally { for (int i = 0; i < layers.Count; i++) layers[i].Enabled = before[i]; }
    }
}
