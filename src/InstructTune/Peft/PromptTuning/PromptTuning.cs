// Prompt tuning (Lester et al., 2021; PEFT's PromptEmbedding): num_virtual_tokens learned embedding rows prepended to
// every sequence at the embedding layer; everything else is frozen. Config, layer and injector of the method.
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Peft.PromptTuning;

/// <summary>How the soft prompt starts, PEFT's prompt_tuning_init: RANDOM (N(0, 1), nn.Embedding's init),
/// SAMPLE_VOCAB (embeddings of random vocabulary tokens), TEXT (embeddings of prompt_tuning_init_text's tokens,
/// repeated and cut to num_virtual_tokens).</summary>
public enum PromptInit { Random, SampleVocab, Text }

public sealed record PromptTuningConfig
{
    public int NumVirtualTokens { get; init; } = 20;
    public PromptInit Init { get; init; } = PromptInit.Random;
    public string InitText { get; init; } = "";
}

/// <summary>The soft prompt: parameter `embedding` (P, hidden), saved by PEFT as `prompt_embeddings`.</summary>
public sealed class PromptEmbedding : Module, ISoftPrompt, IAdapterLayer
{
    public Parameter Embedding { get; }
    public int Count => Embedding.Size(0);
    public bool Enabled { get; set; } = true;

    public PromptEmbedding(int count, int hidden) => Embedding = RegisterParameter("embedding", new Parameter(count, hidden));

    public Tensor Embeddings() => Embedding;
}

public static class PromptTuningInjector
{
    public const string ModuleName = "prompt_encoder";

    /// <summary>
    /// Freezes the model and attaches a soft prompt initialised as the config says. <paramref name="encode"/> turns
    /// prompt_tuning_init_text into token ids (the tokenizer with its special tokens, as PEFT's tokenizer call).
    /// </summary>
    public static PromptEmbedding Inject(LlamaModel model, PromptTuningConfig config, ulong seed, Func<string, int[]>? encode = null)
    {
        int P = config.NumVirtualTokens, D = model.Config.HiddenSize, V = model.Config.VocabSize;
        if (P <= 0) throw new ArgumentException($"num_virtual_tokens must be positive, got {P}");
        if (P >= model.Config.MaxPositionEmbeddings)
            throw new ArgumentException($"num_virtual_tokens {P} leaves no position for real tokens (max_position_embeddings {model.Config.MaxPositionEmbeddings})");
        foreach (var (_, p) in model.NamedParameters()) p.Frozen = true;
        var prompt = new PromptEmbedding(P, D);
        var rng = new Rng(seed);
        var words = model.Backbone.EmbedTokens.Weight.Span;
        int[]? ids = config.Init switch
        {
            PromptInit.SampleVocab => Enumerable.Range(0, P).Select(_ => rng.NextInt(V)).ToArray(),
            PromptInit.Text => TextIds(config.InitText, P, encode),
            _ => null,
        };
        if (ids == null) rng.Normal(prompt.Embedding.Span, 0f, 1f);
        else for (int i = 0; i < P; i++) words.Slice(ids[i] * D, D).CopyTo(prompt.Embedding.Span.Slice(i * D, D));
        model.AttachVirtualTokens(ModuleName, prompt);
        return prompt;
    }

    private static int[] TextIds(string text, int P, Func<string, int[]>? encode)
    {
        if (string.IsNullOrEmpty(text)) throw new ArgumentException("prompt tuning init 'text' needs a non-empty init_text");
        if (encode == null) throw new ArgumentException("prompt tuning init 'text' needs the model's tokenizer");
        var ids = encode(text);
        if (ids.Length == 0) throw new ArgumentException($"init_text \"{text}\" encodes to no tokens");
        return Enumerable.Range(0, P).Select(i => ids[i % ids.Length]).ToArray();   // repeated, then cut to P (PEFT)
    }

    public static PromptEmbedding? Find(Module model) =>
        model.NamedModules().Select(m => m.Module).OfType<PromptEmbedding>().FirstOrDefault();
}

/// <summary>Prompt tuning in PEFT's layout (peft_type PROMPT_TUNING, tensor `prompt_embeddings` (P, hidden)).</summary>
public static class PromptTuningAdapterIO
{
    public static void Save(LlamaModel model, PromptTuningConfig config, string dir, string baseModelPath = "")
    {
        var prompt = PromptTuningInjector.Find(model) ?? throw new InvalidOperationException("the model has no soft prompt to save");
        var c = model.Config;
        PromptLearningFile.Save(dir, "PROMPT_TUNING", prompt.Embedding.ToArray(), prompt.Count, c.HiddenSize, new System.Text.Json.Nodes.JsonObject
        {
            ["token_dim"] = c.HiddenSize,
            ["num_attention_heads"] = c.NumAttentionHeads,
            ["num_layers"] = c.NumHiddenLayers,
            ["prompt_tuning_init"] = config.Init switch { PromptInit.Text => "TEXT", PromptInit.SampleVocab => "SAMPLE_VOCAB", _ => "RANDOM" },
            ["prompt_tuning_init_text"] = config.Init == PromptInit.Text ? config.InitText : null,
            ["tokenizer_name_or_path"] = config.Init == PromptInit.Text ? baseModelPath : null,
        }, baseModelPath);
    }

    public static void LoadInto(LlamaModel model, PromptLearningFile file, string dir)
    {
        if (file.Width != model.Config.HiddenSize)
            throw new InvalidDataException($"{dir}: prompt_embeddings rows have {file.Width} values; the model's hidden_size is {model.Config.HiddenSize}");
        try { PromptTuningInjector.Inject(model, new PromptTuningConfig { NumVirtualTokens = file.NumVirtualTokens }, 0).Embedding.Load(file.Embeddings); }
        catch (ArgumentException e) { throw new InvalidDataException($"{dir}: {e.Message}"); }
    }
}
