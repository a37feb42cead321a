// Prefix tuning (Li & Liang, 2021; PEFT's PrefixEncoder): per layer, num_virtual_tokens keys and values that every
// sequence's queries attend to ahead of its own, like a past KV cache; everything else is frozen. With
// prefix_projection the prefixes come from a small MLP over a (P, token_dim) embedding:
//   prefixes = Linear(encoder_hidden → L·2·token_dim)(tanh(Linear(token_dim → encoder_hidden)(embedding)))
// else they are the embedding (P, L·2·token_dim) itself. token_dim = kv_heads · head_dim (PEFT's GQA adjustment).
// Row layout of the (P, L·2·token_dim) prefixes, as PEFT's get_prompt views them: block 2l = layer l's keys,
// block 2l+1 its values, each kv-head-major (kv_heads, head_dim).
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Peft.PrefixTuning;

public sealed record PrefixTuningConfig
{
    public int NumVirtualTokens { get; init; } = 20;
    public bool PrefixProjection { get; init; }
    /// <summary>Hidden width of the projection MLP; 0 = token_dim (PEFT's default).</summary>
    public int EncoderHiddenSize { get; init; }
}

public sealed class PrefixEncoder : Module, IKvPrefix, IAdapterLayer
{
    public Parameter Embedding { get; }
    public Linear? Down { get; }
    public Linear? Up { get; }
    public int Layers { get; }
    public int TokenDim { get; }
    public int EncoderHiddenSize { get; }
    public int Count => Embedding.Size(0);
    public bool Enabled { get; set; } = true;
    public bool Projection => Down != null;

    public PrefixEncoder(int P, int layers, int tokenDim, bool projection, int encoderHidden, Rng rng)
    {
        Layers = layers; TokenDim = tokenDim;
        EncoderHiddenSize = encoderHidden > 0 ? encoderHidden : tokenDim;
        Embedding = RegisterParameter("embedding", new Parameter(P, projection ? tokenDim : layers * 2 * tokenDim));
        rng.Normal(Embedding.Span, 0f, 1f);                                   // nn.Embedding's N(0, 1)
        if (!projection) return;
        Down = RegisterModule("transform_0", new Linear(tokenDim, EncoderHiddenSize, bias: true));
        Up = RegisterModule("transform_2", new Linear(EncoderHiddenSize, layers * 2 * tokenDim, bias: true));
        TorchInit.LinearDefault(Down, rng);
        TorchInit.LinearDefault(Up, rng);
    }

    /// <summary>(P, L·2·token_dim): the embedding, or the MLP over it.</summary>
    public Tensor Prefixes() => Down == null ? Embedding : Up!.Forward(Ops.Tanh(Down.Forward(Embedding)));

    public IReadOnlyList<(Tensor K, Tensor V)> LayerPrefixes()
    {
        int P = Count, L2 = 2 * Layers;
        var rows = Ops.Reshape(Prefixes(), P * L2, TokenDim);               // row p·2L + j = block j of token p
        var result = new (Tensor, Tensor)[Layers];
        for (int l = 0; l < Layers; l++)
        {
            var k = new int[P]; var v = new int[P];
            for (int p = 0; p < P; p++) { k[p] = p * L2 + 2 * l; v[p] = p * L2 + 2 * l + 1; }
            result[l] = (Ops.GatherRows(rows, k), Ops.GatherRows(rows, v)); // (P, token_dim) each
        }
        return result;
    }
}

public static class PrefixTuningInjector
{
    public const string ModuleName = "prefix_encoder";

    public static PrefixEncoder Inject(LlamaModel model, PrefixTuningConfig config, ulong seed)
    {
        int P = config.NumVirtualTokens;
        if (P <= 0) throw new ArgumentException($"num_virtual_tokens must be positive, got {P}");
        if (P >= model.Config.MaxPositionEmbeddings)
            throw new ArgumentException($"num_virtual_tokens {P} leaves no position for real tokens (max_position_embeddings {model.Config.MaxPositionEmbeddings})");
        foreach (var (_, p) in model.NamedParameters()) p.Frozen = true;
        var c = model.Config;
        var encoder = new PrefixEncoder(P, c.NumHiddenLayers, c.NumKeyValueHeads * c.HeadDim, config.PrefixProjection, config.EncoderHiddenSize, new Rng(seed));
        model.AttachVirtualTokens(ModuleName, encoder);
        return encoder;
    }

    public static PrefixEncoder? Find(Module model) =>
        model.NamedModules().Select(m => m.Module).OfType<PrefixEncoder>().FirstOrDefault();
}

/// <summary>Prefix tuning in PEFT's layout (peft_type PREFIX_TUNING, tensor `prompt_embeddings` (P, L·2·token_dim)
/// holding the prefixes — the MLP's output with prefix_projection — and inference_mode true, as PEFT saves it).</summary>
public static class PrefixTuningAdapterIO
{
    public static void Save(LlamaModel model, PrefixTuningConfig config, string dir, string baseModelPath = "")
    {
        var encoder = PrefixTuningInjector.Find(model) ?? throw new InvalidOperationException("the model has no prefix encoder to save");
        float[] prefixes;
        using (Tape.Record(recordGrad: false)) prefixes = encoder.Prefixes().ToArray();
        var c = model.Config;
        PromptLearningFile.Save(dir, "PREFIX_TUNING", prefixes, encoder.Count, c.NumHiddenLayers * 2 * encoder.TokenDim, new System.Text.Json.Nodes.JsonObject
        {
            ["token_dim"] = encoder.TokenDim,
            ["num_attention_heads"] = c.NumKeyValueHeads,
            ["num_layers"] = c.NumHiddenLayers,
            ["encoder_hidden_size"] = encoder.EncoderHiddenSize,
            ["prefix_projection"] = encoder.Projection,
        }, baseModelPath);
    }

    /// <summary>Loads the saved prefixes as a plain (projection-free) encoder, as PEFT does in inference mode.</summary>
    public static void LoadInto(LlamaModel model, PromptLearningFile file, string dir)
    {
        var c = model.Config;
        int want = c.NumHiddenLayers * 2 * c.NumKeyValueHeads * c.HeadDim;
        if (file.Width != want)
            throw new InvalidDataException($"{dir}: prompt_embeddings rows have {file.Width} values; this model's prefixes need num_layers {c.NumHiddenLayers} × 2 × {c.NumKeyValueHeads * c.HeadDim} = {want}");
        try { PrefixTuningInjector.Inject(model, new PrefixTuningConfig { NumVirtualTokens = file.NumVirtualTokens }, 0).Embedding.Load(file.Embeddings); }
        catch (ArgumentException e) { throw new InvalidDataException($"{dir}: {e.Message}"); }
    }
}
