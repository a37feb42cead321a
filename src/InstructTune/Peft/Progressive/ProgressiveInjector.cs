using InstructTune.Checkpoints;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Peft.Lora;

namespace InstructTune.Peft.Progressive;

/// <summary>
/// Wraps every Linear that lora.target_modules names in a <see cref="ProgressiveLinear"/> with one column per stage and
/// freezes everything else. All columns start trainable so the trainer's parameter list holds them all; the continual
/// side (Training/Continual/ContinualStages.cs) then selects column k for stage k and freezes the others
/// (<see cref="Select"/>). Initialisation draws from one seeded RNG in module order.
/// </summary>
public static class ProgressiveInjector
{
    public static IReadOnlyList<(string Name, ProgressiveLinear Layer)> Inject(Module model, LoraConfig config, int columns, ulong seed)
    {
        if (config.Rank <= 0) throw new ArgumentException($"rank must be positive, got {config.Rank}");
        var initRng = new Rng(seed);
        foreach (var (_, p) in model.NamedParameters()) p.Frozen = true;
        var targets = model.NamedModules().Where(m => m.Module is Linear && config.Targets(m.Name)).Select(m => m.Name).ToList();
        if (targets.Count == 0)
            throw new ArgumentException($"target_modules [{string.Join(", ", config.TargetModules)}] match no Linear layer of the model");
        var layers = new List<(string, ProgressiveLinear)>();
        foreach (var name in targets)
        {
            ProgressiveLinear? made = null;
            model.ReplaceModule(name, old => made = new ProgressiveLinear((Linear)old, config, columns, initRng));
            layers.Add((name, made!));
        }
        return layers;
    }

    public static IReadOnlyList<(string Name, ProgressiveLinear Layer)> Find(Module model) =>
        model.NamedModules().Where(m => m.Module is ProgressiveLinear).Select(m => (m.Name, (ProgressiveLinear)m.Module)).ToList();

    /// <summary>Selects column <paramref name="column"/> (0-based) in every layer; with <paramref name="train"/> it alone trains.</summary>
    public static void Select(Module model, int column, bool train)
    {
        foreach (var (_, l) in Find(model)) l.Select(column, train);
    }

    /// <summary>Selects a column for evaluation only (the trainable flags stay as they are).</summary>
    public static void Show(Module model, int column)
    {
        foreach (var (_, l) in Find(model)) l.Active = column;
    }
}

/// <summary>
/// Exports the selected column of a progressive model as a plain PEFT LoRA adapter (loadable by every command that takes
/// an adapter): column c with its laterals is a LoRA of rank R = (c+1)·r, A' = [A_c; A_0; …; A_{c−1}] (R, in) and
/// B' = [B_c, u_{c,0}·B_0, …, u_{c,c−1}·B_{c−1}] (out, R), with lora_alpha = (c+1)·alpha so alpha'/R = alpha/r.
/// </summary>
public static class ProgressiveAdapterIO
{
    public static void Save(Module model, LoraConfig config, string dir, string baseModelPath = "")
    {
        Directory.CreateDirectory(dir);
        var layers = ProgressiveInjector.Find(model);
        if (layers.Count == 0) throw new InvalidOperationException("the model has no progressive layers to save");
        int c = layers[0].Layer.Active, r = config.Rank, R = (c + 1) * r;
        var tensors = new List<TensorToWrite>();
        foreach (var (name, layer) in layers)
        {
            int inF = layer.InFeatures, outF = layer.OutFeatures;
            var order = new[] { c }.Concat(Enumerable.Range(0, c)).ToArray();
            var a = new float[R * inF];
            var b = new float[outF * R];
            for (int blk = 0; blk < order.Length; blk++)
            {
                var col = layer.Columns[order[blk]];
                col.A.Weight.Span.CopyTo(a.AsSpan(blk * r * inF, r * inF));
                float coef = blk == 0 ? 1f : layer.Columns[c].Lateral[order[blk]].Span[0];
                var bw = col.B.Weight.Span;                                   // (out, r)
                for (int o = 0; o < outF; o++)
                    for (int t = 0; t < r; t++) b[o * R + blk * r + t] = coef * bw[o * r + t];
            }
            tensors.Add(TensorToWrite.FromF32($"{LoraAdapterIO.Prefix}{name}.lora_A.weight", DType.F32, [R, inF], a));
            tensors.Add(TensorToWrite.FromF32($"{LoraAdapterIO.Prefix}{name}.lora_B.weight", DType.F32, [outF, R], b));
        }
        SafetensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), tensors);
        LoraAdapterIO.WriteConfig(dir, config with { Rank = R, Alpha = config.Alpha * (c + 1) }, layers.Select(l => l.Name), baseModelPath);
    }
}
