// The one place that maps names to PEFT methods: `training.method` values to their injectors (training) and
// adapter_config.json's peft_type to their loaders (score, generate, eval, merge). Each method lives in its own
// folder (Peft/Lora — LoRA, rsLoRA, DoRA, and QLoRA as LoRA over an NF4 base —, Peft/Ia3, …) with the same roles:
// config, layer, injector, adapter IO.
using System.Text.Json;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Models.Inference;
using InstructTune.Peft.Hint;
using InstructTune.Peft.Ia3;
using InstructTune.Peft.Iapt;
using InstructTune.Peft.Iasft;
using InstructTune.Peft.Ipeft;
using InstructTune.Peft.Lora;
using InstructTune.Peft.PrefixTuning;
using InstructTune.Peft.PromptTuning;
using InstructTune.Training.Config;

namespace InstructTune.Peft;

/// <summary>A method injected into a model for training: what it is called, how its adapter is saved, whether it merges.</summary>
public sealed record PeftMethod(string Name, string PeftType, bool Mergeable, Action<Module, string, string> Save)
{
    /// <summary>An RNG the trainer must checkpoint (LoRA dropout), or null.</summary>
    public Rng? Rng { get; init; }
}

public static class PeftRegistry
{
    /// <summary>peft_type values InstructTune reads.</summary>
    public static readonly IReadOnlyList<string> SupportedTypes = ["LORA", "IA3", "PROMPT_TUNING", "PREFIX_TUNING", IasftAdapterFile.PeftType, IpeftAdapterFile.PeftType, IaptAdapterFile.PeftType, HintInjector.PeftType];

    /// <summary>
    /// Injects the method that training.method names (none for full fine-tuning) and freezes the rest. Errors name
    /// the config key at fault. IaSFT needs <paramref name="fisherBackward"/> (batch b's response-loss backward, for
    /// the Fisher) unless <paramref name="iasftMask"/> names a folder whose mask it reuses (a resumed run).
    /// </summary>
    public static PeftMethod? Inject(Module model, TrainConfig config, Func<string, int[]>? encode = null,
        Action<int>? fisherBackward = null, string? iasftMask = null, int stages = 1)
    {
        var t = config.Training;
        switch (t.Method)
        {
            case TuningMethod.Full:
                return null;
            case TuningMethod.Lora or TuningMethod.Qlora:
            {
                var lora = new LoraConfig
                {
                    Rank = config.Lora.Rank, Alpha = config.Lora.Alpha, Dropout = config.Lora.Dropout,
                    TargetModules = config.Lora.TargetModules, UseRsLora = config.Lora.UseRslora, UseDora = config.Lora.UseDora,
                };
                IReadOnlyList<(string Name, LoraLinear Layer)> layers;
                try { layers = LoraInjector.Inject(model, lora, (ulong)t.Seed, quantizeBase: t.Method == TuningMethod.Qlora, bf16Base: config.Model.WeightStorage == WeightStorage.Bfloat16); }
                catch (ArgumentException e) { throw new ConfigException($"lora.target_modules: {e.Message}"); }
                string name = (t.Method == TuningMethod.Qlora ? "qlora" : "lora") + (lora.UseDora ? "+dora" : "");
                return new PeftMethod(name, "LORA", t.Method == TuningMethod.Lora, (m, dir, basePath) => LoraAdapterIO.Save(m, lora, dir, basePath))
                {
                    Rng = layers.Select(l => l.Layer.DropoutRng).FirstOrDefault(r => r != null),
                };
            }
            case TuningMethod.Ia3:
            {
                var ia3 = new Ia3Config { TargetModules = config.Ia3.TargetModules, FeedforwardModules = config.Ia3.FeedforwardModules };
                try { Ia3Injector.Inject(model, ia3); }
                catch (ArgumentException e) { throw new ConfigException($"ia3.target_modules: {e.Message}"); }
                return new PeftMethod("ia3", "IA3", true, (m, dir, basePath) => Ia3AdapterIO.Save(m, ia3, dir, basePath));
            }
            case TuningMethod.PromptTuning:
            {
                var s = config.PromptTuning;
                var pt = new PromptTuningConfig { NumVirtualTokens = s.NumVirtualTokens, Init = s.Init, InitText = s.InitText };
                try { PromptTuningInjector.Inject(Llama(model), pt, (ulong)t.Seed, encode); }
                catch (ArgumentException e) { throw new ConfigException($"prompt_tuning: {e.Message}"); }
                return new PeftMethod("prompt_tuning", "PROMPT_TUNING", false, (m, dir, basePath) => PromptTuningAdapterIO.Save(Llama(m), pt, dir, basePath));
            }
            case TuningMethod.PrefixTuning:
            {
                var s = config.PrefixTuning;
                var pc = new PrefixTuningConfig { NumVirtualTokens = s.NumVirtualTokens, PrefixProjection = s.PrefixProjection, EncoderHiddenSize = s.EncoderHiddenSize };
                try { PrefixTuningInjector.Inject(Llama(model), pc, (ulong)t.Seed); }
                catch (ArgumentException e) { throw new ConfigException($"prefix_tuning: {e.Message}"); }
                return new PeftMethod("prefix_tuning", "PREFIX_TUNING", false, (m, dir, basePath) => PrefixTuningAdapterIO.Save(Llama(m), pc, dir, basePath));
            }
            case TuningMethod.Iasft:
            {
                var s = config.Iasft;
                var ic = new IasftConfig { Fraction = s.Fraction, Selection = s.Selection, FisherBatches = s.FisherBatches, TargetModules = s.TargetModules };
                if (iasftMask != null) IasftAdapterIO.LoadInto(model, iasftMask);
                else
                {
                    if (fisherBackward == null) throw new ConfigException("training.method: iasft needs training data to estimate the Fisher");
                    IReadOnlyList<(string Name, Engine.Modules.Linear Layer)> targets;
                    try { targets = IasftSelection.Targets(model, ic); }
                    catch (ArgumentException e) { throw new ConfigException($"iasft.target_modules: {e.Message}"); }
                    var fisher = IasftSelection.EstimateFisher(model, targets, ic.FisherBatches, fisherBackward);
                    var masks = IasftSelection.Select(fisher, ic.Fraction, ic.Selection);
                    IasftInjector.Inject(model, targets.Select((x, i) => (x.Name, masks[i])).ToList());
                }
                return new PeftMethod("iasft", IasftAdapterFile.PeftType, true, (m, dir, basePath) => IasftAdapterIO.Save(m, ic, dir, basePath));
            }
            case TuningMethod.Ipeft:
            {
                var s = config.Ipeft;
                var ic = new IpeftConfig { Rank = s.Rank, Alpha = s.Alpha, TargetModules = s.TargetModules };
                try { IpeftInjector.Inject(Llama(model), ic, (ulong)t.Seed); }
                catch (ArgumentException e) { throw new ConfigException($"ipeft.target_modules: {e.Message}"); }
                return new PeftMethod("ipeft", IpeftAdapterFile.PeftType, false, (m, dir, basePath) => IpeftAdapterIO.Save(Llama(m), ic, dir, basePath));
            }
            case TuningMethod.Progressive:
            {
                // One LoRA column per stage (Peft/Progressive); the columns are selected and frozen stage by stage by Training/Continual.
                if (stages < 2) throw new ConfigException("training.method: progressive adds one adapter column per stage: it needs two or more data.stages (data.datasets[].stage)", "training.method");
                if (config.Lora.UseDora || config.Lora.UseRslora || config.Lora.Dropout > 0)
                    throw new ConfigException("training.method: progressive columns are plain LoRA columns: lora.use_dora, lora.use_rslora and lora.dropout must be off", "training.method");
                var lora = new LoraConfig { Rank = config.Lora.Rank, Alpha = config.Lora.Alpha, TargetModules = config.Lora.TargetModules };
                try { Progressive.ProgressiveInjector.Inject(model, lora, stages, (ulong)t.Seed); }
                catch (ArgumentException e) { throw new ConfigException($"lora.target_modules: {e.Message}", "lora.target_modules"); }
                return new PeftMethod("progressive", "LORA", false, (m, dir, basePath) => Progressive.ProgressiveAdapterIO.Save(m, lora, dir, basePath));
            }
            case TuningMethod.Iapt:
            {
                var s = config.Iapt;
                var ac = new IaptConfig { NumVirtualTokens = s.NumVirtualTokens, Bottleneck = s.Bottleneck, Activation = s.Activation };
                try { IaptInjector.Inject(Llama(model), ac, (ulong)t.Seed); }
                catch (ArgumentException e) { throw new ConfigException($"iapt: {e.Message}"); }
                return new PeftMethod("iapt", IaptAdapterFile.PeftType, false, (m, dir, basePath) => IaptAdapterIO.Save(Llama(m), ac, dir, basePath));
            }
            case TuningMethod.Hint:
            {
                var s = config.Hint;
                var hc = new HintConfig
                {
                    EncoderLayers = s.EncoderLayers, Rank = s.Rank, Alpha = s.Alpha, TargetModules = s.TargetModules,
                    NumVirtualTokens = s.NumVirtualTokens, Bottleneck = s.Bottleneck,
                };
                try { HintInjector.Inject(Llama(model), hc, (ulong)t.Seed); }
                catch (ArgumentException e) { throw new ConfigException($"hint: {e.Message}"); }
                return new PeftMethod("hint", HintInjector.PeftType, false, (m, dir, basePath) => HintInjector.Save(Llama(m), dir, basePath));
            }
            default:
                throw new ConfigException($"training.method: '{t.Method}' has no PEFT injector");
        }
    }

    private static Models.LlamaModel Llama(Module m) =>
        m as Models.LlamaModel ?? throw new ArgumentException("prompt and prefix tuning need a LlamaModel");

    /// <summary>The peft_type an adapter folder declares (PEFT writes it; a missing one is read as LORA, as older files are).</summary>
    public static string PeftType(string dir)
    {
        string cfgPath = Path.Combine(dir, "adapter_config.json");
        if (!File.Exists(cfgPath)) throw new FileNotFoundException($"adapter_config.json not found in {dir}", cfgPath);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(cfgPath));
            var type = doc.RootElement.TryGetProperty("peft_type", out var pt) && pt.ValueKind == JsonValueKind.String ? pt.GetString()! : "LORA";
            if (!SupportedTypes.Contains(type))
                throw new InvalidDataException($"{cfgPath}: peft_type \"{type}\" is not supported (InstructTune reads {string.Join(", ", SupportedTypes)})");
            return type;
        }
        catch (JsonException e) { throw new InvalidDataException($"{cfgPath}: malformed JSON: {e.Message}", e); }
    }

    /// <summary>Attaches a PEFT adapter folder of any supported type to an inference model (unmerged).</summary>
    public static void ApplyTo(InferenceModel model, string dir)
    {
        switch (PeftType(dir))
        {
            case "LORA": model.ApplyAdapter(LoraAdapterFile.Load(dir)); break;
            case "IA3": model.ApplyIa3(Ia3AdapterFile.Load(dir)); break;
            case IasftAdapterFile.PeftType: model.ApplySparseDeltas(IasftAdapterFile.Load(dir)); break;
            case IpeftAdapterFile.PeftType: model.ApplyIpeft(IpeftAdapterFile.Load(dir)); break;
            case IaptAdapterFile.PeftType: model.ApplyIapt(IaptAdapterFile.Load(dir)); break;
            case HintInjector.PeftType: model.ApplyHint(HintAdapterFile.Load(dir)); break;
            default: model.ApplyVirtualTokens(PromptLearningFile.Load(dir)); break;
        }
    }

    /// <summary>Injects and loads a PEFT adapter folder of any supported type into a trainable model.</summary>
    public static string LoadInto(Module model, string dir)
    {
        var type = PeftType(dir);
        switch (type)
        {
            case "LORA": LoraAdapterIO.LoadInto(model, dir); break;
            case "IA3": Ia3AdapterIO.LoadInto(model, dir); break;
            case "PROMPT_TUNING": PromptTuningAdapterIO.LoadInto(Llama(model), PromptLearningFile.Load(dir), dir); break;
            case "PREFIX_TUNING": PrefixTuningAdapterIO.LoadInto(Llama(model), PromptLearningFile.Load(dir), dir); break;
            case IasftAdapterFile.PeftType: IasftAdapterIO.LoadInto(model, dir); break;
            case IpeftAdapterFile.PeftType: IpeftAdapterIO.LoadInto(Llama(model), dir); break;
            case IaptAdapterFile.PeftType: IaptAdapterIO.LoadInto(Llama(model), dir); break;
            case HintInjector.PeftType: HintInjector.LoadInto(Llama(model), dir); break;
        }
        return type;
    }

    /// <summary>Merges every adapter layer into its base and puts the plain layers back (for a full checkpoint).</summary>
    public static void MergeAndUnload(Module model)
    {
        if (model is Models.LlamaModel { VirtualTokens: not null })
            throw new InvalidDataException("prompt and prefix tuning adapters add virtual tokens and cannot be merged into the weights; use --adapter with score/generate/eval instead");
        if (model is Models.LlamaModel { Conditioner: HintHypernetwork })
            throw new InvalidDataException("HINT adapters are generated per task from its instruction and cannot be merged into the weights; use --adapter with score/generate/eval/serve instead");
        if (model is Models.LlamaModel { Conditioner: IaptGenerator })
            throw new InvalidDataException("IAPT adapters generate each input's prompts from its instruction and cannot be merged into the weights; use --adapter with score/generate/eval instead");
        if (model is Models.LlamaModel { Conditioner: not null })
            throw new InvalidDataException("iPEFT adapters are gated by each input's instruction and cannot be merged into the weights; use --adapter with score/generate/eval instead");
        LoraInjector.MergeAndUnload(model);
        Ia3Injector.MergeAndUnload(model);
        IasftInjector.MergeAndUnload(model);
    }
}
