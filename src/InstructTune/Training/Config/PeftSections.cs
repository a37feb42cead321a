namespace InstructTune.Training.Config;

// Config sections of the PEFT methods beside LoRA (issue 16). training.method picks the method; each method reads
// only its own section (LoRA/QLoRA/DoRA: `lora`, with lora.use_dora for DoRA). Keys follow PEFT's config names.

/// <summary>`ia3:` — read when training.method = ia3 (PEFT IA3Config).</summary>
public sealed class Ia3Section
{
    [ConfigKey("Linear layers that get a learned vector (module-name suffixes, or \"re:\" + a regular expression).")]
    public List<string> TargetModules { get; set; } = ["k_proj", "v_proj", "down_proj"];
    [ConfigKey("Targets whose vector scales the input instead of the output (must be a subset of target_modules).")]
    public List<string> FeedforwardModules { get; set; } = ["down_proj"];
}

/// <summary>`prompt_tuning:` — read when training.method = prompt_tuning (PEFT PromptTuningConfig). Needs data.pack:
/// false, and num_virtual_tokens + the longest example within the model's max_position_embeddings.</summary>
public sealed class PromptTuningSection
{
    [ConfigKey("Soft prompt rows prepended to every sequence (PEFT num_virtual_tokens).", Min = 1, Max = 100000)]
    public int NumVirtualTokens { get; set; } = 20;
    [ConfigKey("How the soft prompt starts: random (N(0,1)), sample_vocab (random tokens' embeddings), text (init_text's).")]
    public Peft.PromptTuning.PromptInit Init { get; set; } = Peft.PromptTuning.PromptInit.Random;
    [ConfigKey("PEFT's prompt_tuning_init_text, for init: text (tokenised with the model's tokenizer, repeated to fit).")]
    public string InitText { get; set; } = "";
}

/// <summary>`prefix_tuning:` — read when training.method = prefix_tuning (PEFT PrefixTuningConfig). Needs data.pack:
/// false, and num_virtual_tokens + the longest example within max_position_embeddings.</summary>
public sealed class PrefixTuningSection
{
    [ConfigKey("Key/value prefix entries per layer (PEFT num_virtual_tokens).", Min = 1, Max = 100000)]
    public int NumVirtualTokens { get; set; } = 20;
    [ConfigKey("Reparameterise the prefixes through PEFT's MLP (Linear, tanh, Linear) while training.")]
    public bool PrefixProjection { get; set; }
    [ConfigKey("Hidden width of the projection MLP; 0 = token_dim (kv_heads × head_dim), PEFT's default.", Min = 0, Max = 1000000)]
    public int EncoderHiddenSize { get; set; }
}
