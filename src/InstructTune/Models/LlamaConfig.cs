namespace InstructTune.Models;

/// <summary>How rotary frequencies are rescaled for long context (config.json "rope_scaling" / "rope_parameters").</summary>
public sealed record RopeScaling(
    string Type,                      // "linear" or "llama3"
    double Factor,
    double LowFreqFactor = 1.0,       // llama3 only
    double HighFreqFactor = 4.0,      // llama3 only
    int OriginalMaxPositionEmbeddings = 8192); // llama3 only

/// <summary>
/// The shape and conventions of a Llama-family decoder (Llama, Mistral, Qwen2, SmolLM, TinyLlama),
/// with Hugging Face config.json meanings. Reading and writing config.json lives beside this record.
/// </summary>
public sealed partial record LlamaConfig
{
    public string ModelType { get; init; } = "llama";            // llama | mistral | qwen2
    public int VocabSize { get; init; } = 32000;
    public int HiddenSize { get; init; } = 4096;
    public int IntermediateSize { get; init; } = 11008;
    public int NumHiddenLayers { get; init; } = 32;
    public int NumAttentionHeads { get; init; } = 32;
    public int NumKeyValueHeads { get; init; } = 32;
    public int? HeadDimOverride { get; init; }                    // config "head_dim" when present
    public int HeadDim => HeadDimOverride ?? HiddenSize / NumAttentionHeads;
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }                      // q/k/v/o biases (Llama "attention_bias")
    public bool QkvBias { get; init; }                            // Qwen2: q/k/v biases, no o bias
    public bool MlpBias { get; init; }
    public int? SlidingWindow { get; init; }                      // effective window (null = full causal)
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    public string TorchDtype { get; init; } = "float32";
}
