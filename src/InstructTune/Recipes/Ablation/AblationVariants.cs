// The named variants `itune ablate --variants` trains: each is a set of recipe overrides (key=value, as on the
// command line) applied on top of the ablation's config. Built-ins cover issue 15's instruction-aware variants;
// other features register theirs with one Register call (issue 16's PEFT methods, for example).
namespace InstructTune.Recipes.Ablation;

/// <summary>A named set of recipe overrides.</summary>
public sealed record AblationVariant(string Name, string Description, IReadOnlyList<string> Overrides);

public static class AblationVariants
{
    private static readonly Dictionary<string, AblationVariant> Registry = new(StringComparer.Ordinal);

    static AblationVariants()
    {
        Register("baseline", "the config as given (instruction-aware variants off)");
        Register("segments", "segment embeddings (model.instruction_aware.segment_embeddings)",
            "model.instruction_aware.segment_embeddings=true");
        Register("gates", "an instruction gate after the first decoder layer (model.instruction_aware.gate_layers)",
            "model.instruction_aware.gate_layers=[0]");
        Register("segments_gates", "segment embeddings and the first-layer instruction gate",
            "model.instruction_aware.segment_embeddings=true", "model.instruction_aware.gate_layers=[0]");
        Register("two_stream", "two-stream fusion: the first decoder layer run over the instruction alone, fused into the input embeddings (model.instruction_aware.two_stream_layers)",
            "model.instruction_aware.two_stream_layers=1");
        Register("cot", "chain-of-thought pathways: three parallel paths of width 32 over the final hidden states (model.instruction_aware.cot_width)",
            "model.instruction_aware.cot_width=32");
        Register("task_head", "the dual head: a task classifier over the pooled instruction representation, λ = 0.5 (model.instruction_aware.task_head_weight; needs tasks in the data)",
            "model.instruction_aware.task_head_weight=0.5");
        Register("representation", "the instruction-representation loss, α = 0.1 (model.instruction_aware.representation_alpha)",
            "model.instruction_aware.representation_alpha=0.1");
        Register("instruction_embedding", "a separate embedding table for instruction tokens, a copy of the base one at start (model.instruction_aware.instruction_embedding)",
            "model.instruction_aware.instruction_embedding=true");
        Register("markers", "instruction marker tokens [INST] / [/INST] around every instruction, new rows at the mean embedding (model.instruction_aware.marker_tokens)",
            "model.instruction_aware.marker_tokens=[\"[INST]\", \"[/INST]\"]");
        Register("biased_attention", "instruction-biased attention, a learned per-layer, per-head bias on instruction keys (model.instruction_aware.biased_attention)",
            "model.instruction_aware.biased_attention=true");
        Register("temperature_head", "the temperature head over the pooled instruction representation, μ = 1 (the config gives model.instruction_aware.temperature_targets by task with temperature_weight: 0 for the other variants)",
            "model.instruction_aware.temperature_weight=1");
        // Issue 16's PEFT methods (docs/ARCHITECTURE.md "PEFT methods"); each keeps its section's defaults.
        Register("lora", "LoRA (training.method lora)", "training.method=lora");
        Register("dora", "DoRA (lora.use_dora)", "training.method=lora", "lora.use_dora=true");
        Register("ia3", "IA3 scaling vectors (training.method ia3)", "training.method=ia3");
        Register("prompt", "prompt tuning, 20 soft tokens (training.method prompt_tuning; unpacked rows)", "training.method=prompt_tuning", "data.pack=false");
        Register("prefix", "prefix tuning, 20 key/value prefixes per layer (training.method prefix_tuning; unpacked rows)", "training.method=prefix_tuning", "data.pack=false");
        Register("iasft", "Fisher-sparse tuning: the top 0.5 % weight entries (training.method iasft)", "training.method=iasft");
        Register("ipeft", "instruction-gated low-rank adapters (training.method ipeft)", "training.method=ipeft");
        Register("hint", "HINT: instructions encoded once per task per batch, hypernetwork-generated adapter gates and prompts (training.method hint; unpacked rows)", "training.method=hint", "data.pack=false");
        Register("iapt", "instruction-aware prompt tuning: 4 soft tokens per layer generated from each instruction (training.method iapt)", "training.method=iapt");
        // Issue 17's continual-learning strategies, on top of a staged config with none of its own (docs/CONTINUAL.md);
        // each run also writes its forgetting matrix (run_dir/forgetting.json).
        Register("continual-ewc", "EWC across stages, λ = 1000 (loss.ewc_lambda)", "loss.ewc_lambda=1000");
        Register("continual-online-ewc", "online EWC, λ = 1000, γ = 0.9 (continual.ewc_gamma)", "loss.ewc_lambda=1000", "continual.ewc_gamma=0.9");
        Register("continual-agem", "A-GEM over an episodic memory of earlier stages (continual.gem agem)", "continual.gem=agem");
        Register("continual-gem", "GEM, one constraint per earlier stage (continual.gem gem)", "continual.gem=gem");
    }

    /// <summary>Adds (or replaces) a variant; names are lower-case words with '_' or '-'.</summary>
    public static void Register(string name, string description, params string[] overrides)
    {
        if (string.IsNullOrEmpty(name) || !name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '_' or '-'))
            throw new ArgumentException($"variant name \"{name}\": use lower-case letters, digits, '_' or '-'");
        foreach (var o in overrides)
            if (!o.Contains('=')) throw new ArgumentException($"variant {name}: override \"{o}\" is not key=value");
        lock (Registry) Registry[name] = new AblationVariant(name, description, overrides);
    }

    public static IReadOnlyList<AblationVariant> All { get { lock (Registry) return [.. Registry.Values.OrderBy(v => v.Name, StringComparer.Ordinal)]; } }

    /// <summary>The variants named in a comma-separated list, in order; an unknown name is refused listing the known ones.</summary>
    public static IReadOnlyList<AblationVariant> Parse(string list)
    {
        var names = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length == 0) throw new Common.InputException("variants: name at least one variant (" + string.Join(", ", All.Select(v => v.Name)) + ")");
        var seen = new HashSet<string>();
        var result = new List<AblationVariant>();
        foreach (var n in names)
        {
            if (!seen.Add(n)) throw new Common.InputException($"variants: \"{n}\" is named twice");
            AblationVariant? v;
            lock (Registry) Registry.TryGetValue(n, out v);
            result.Add(v ?? throw new Common.InputException($"variants: unknown variant \"{n}\"; known: {string.Join(", ", All.Select(x => x.Name))}"));
        }
        return result;
    }
}
