// Per-sequence key/value cache: for each layer, K and V as [nKv, Capacity, hd] float32 (rotated keys).
namespace InstructTune.Models.Inference;

public sealed class KvCache
{
    public int Capacity { get; }
    public int Length { get; internal set; }
    internal readonly float[][] K, V;   // [layer][(kvHead · Capacity + index) · hd + i]

    public KvCache(LlamaConfig c, int capacity)
    {
        if (capacity <= 0) throw new ArgumentOutOfRangeException(nameof(capacity));
        Capacity = capacity;
        K = new float[c.NumHiddenLayers][];
        V = new float[c.NumHiddenLayers][];
        long n = (long)c.NumKeyValueHeads * capacity * c.HeadDim;
        for (int l = 0; l < K.Length; l++) { K[l] = new float[n]; V[l] = new float[n]; }
    }

    /// <summary>Forgets the cached tokens (the buffers are reused) and the instruction state.</summary>
    public void Clear() { Length = 0; _instruction = null; _encoder?.Clear(); PromptK = PromptV = null; HintMixers = null; }

    /// <summary>IAPT and HINT: this sequence's generated prompts per layer, (P, kvHeads·hd) keys and values; null until its first chunk.</summary>
    internal float[][]? PromptK, PromptV;

    /// <summary>HINT: the generated r×r adapter matrix M_l(e) of this sequence's task per layer, (L, r·r) (its prompts are
    /// PromptK/PromptV); null until its first chunk.</summary>
    internal float[]? HintMixers;

    // The running instruction sums of the instruction-aware variants, one per stage (0 = token embeddings, l + 1 =
    // after decoder layer l): (D) sum of the instruction rows seen so far and their count, so a decode step gets
    // the same causal mean (SegmentMeanKernel) as the whole sequence fed at once.
    private (float[] Sum, int Count)[]? _instruction;

    internal ref (float[] Sum, int Count) InstructionState(int stage, int stages, int D)
    {
        _instruction ??= new (float[], int)[stages];
        if (stage >= _instruction.Length) Array.Resize(ref _instruction, stage + 1);   // a caller with more stages
        ref var st = ref _instruction[stage];
        st.Sum ??= new float[D];
        return ref st;
    }

    /// <summary>Instruction-biased attention: 1 where cache row i holds an instruction token (Capacity), written as
    /// tokens are fed; allocated on first use.</summary>
    internal byte[] InstructionKeys => _instructionKeys ??= new byte[Capacity];
    private byte[]? _instructionKeys;

    // Two-stream fusion's instruction stream: its own cache for the encoder layers 0..K−1, indexed by instruction
    // token (InferenceTwoStream.cs).
    private KvCache? _encoder;

    internal KvCache EncoderCache(LlamaConfig c, int layers) =>
        _encoder ??= new KvCache(c with { NumHiddenLayers = layers }, Capacity);

    public long Bytes => (long)K.Length * 2 * K[0].Length * sizeof(float);
}
