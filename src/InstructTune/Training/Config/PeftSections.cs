namespace InstructTune.Training.Config;

// Config sections of the PEFT methods beside LoRA (issue 16). training.method picks the method; each method reads
// only its own section (LoRA/QLoRA/DoRA: `lora`, with lora.use_dora for DoRA). Keys follow PEFT's config names.

/// <summary>`ia3:` — read when training.method = ia3 (PEFT IA3Config).</summary>
public sealed class Ia3Section
{
    /// <summary>Linear layers that get a learned vector (module-name suffixes, or "re:" + a regular expression).</summary>
    public List<string> TargetModules { get; set; } = ["k_proj", "v_proj", "down_proj"];
    /// <summary>Targets whose vector scales the input instead of the output (must be a subset of target_modules).</summary>
    public List<string> FeedforwardModules { get; set; } = ["down_proj"];
}

/// <summary>`prompt_tuning:` — read when training.method = prompt_tuning (PEFT PromptTuningConfig). Needs data.pack:
/// false, and num_virtual_tokens + data.max_seq_len within the model's max_position_embeddings.</summary>
public sealed class PromptTuningSection
{
    /// <summary>Soft prompt rows prepended to every sequence.</summary>
    public int NumVirtualTokens { get; set; } = 20;
    /// <summary>random (N(0,1)) | sample_vocab (random tokens' embeddings) | text (init_text's token embeddings).</summary>
    public Peft.PromptTuning.PromptInit Init { get; set; } = Peft.PromptTuning.PromptInit.Random;
    /// <summary>PEFT's prompt_tuning_init_text, for init: text (tokenised with the model's tokenizer, repeated to fit).</summary>
    public string InitText { get; set; } = "";
}

/// <summary>`prefix_tuning:` — read when training.method = prefix_tuning (PEFT PrefixTuningConfig). Needs data.pack:
/// false, and num_virtual_tokens + data.max_seq_len within max_position_embeddings.</summary>
public sealed class PrefixTuningSection
{
    /// <summary>Key/value prefix entries per layer.</summary>
    public int NumVirtualTokens { get; set; } = 20;
    /// <summary>Reparameterise the prefixes through PEFT's MLP (Linear, tanh, Linear) while training.</summary>
    public bool PrefixProjection { get; set; }
    /// <summary>The MLP's hidden width; 0 = token_dim (kv_heads · head_dim), PEFT's default.</summary>
    public int EncoderHiddenSize { get; set; }
}
