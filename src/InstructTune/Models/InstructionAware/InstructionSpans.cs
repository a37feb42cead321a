// Where the instruction sits in a batch: per token, whether it is an instruction token (Segment.Instruction = 1) and
// where a run (a row, or a packed document) starts. Built once per forward from LlamaBatch.Segments and shared by
// every instruction-aware part of the model (segment embeddings, instruction context, gates, biased attention)
// and by the PEFT methods that condition on the instruction (issue 16: iPEFT, IAPT, HINT).
//
// The instruction context of token t is causal: the mean of the instruction rows j ≤ t of its document
// (zero before the first instruction token). For response tokens, which follow the whole prompt, it is the mean
// over the whole instruction; and it never looks ahead, so a KV-cached decoder reproduces it exactly.
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;

namespace InstructTune.Models.InstructionAware;

public sealed class InstructionSpans
{
    /// <summary>Segment ids as the data pipeline writes them (Data.Templating.Segment): 0 template/system text,
    /// 1 instruction, 2 input/context, 3 response.</summary>
    public const int Template = 0, Instruction = 1, Input = 2, Response = 3, Count = 4;

    public int B { get; }
    public int T { get; }
    /// <summary>(B·T) segment id per token; padding keeps whatever the collator wrote (0).</summary>
    public int[] Segments { get; }
    /// <summary>(B·T) 1 where the token is a real (non-padding) instruction token.</summary>
    public byte[] Select { get; }
    /// <summary>(B·T) 1 where a run starts: the first token of a row or of a packed document.</summary>
    public byte[] Restart { get; }
    /// <summary>(B·T) the run (document) index of each token, −1 on padding; runs are numbered across the batch.</summary>
    public int[] DocumentOf { get; }
    /// <summary>Per run, the row (b·T + t) of its last token (where the causal mean covers the whole instruction).</summary>
    public int[] LastRow { get; }

    private InstructionSpans(int B, int T, int[] segments, byte[] select, byte[] restart, int[] documentOf, int[] lastRow)
    {
        this.B = B; this.T = T; Segments = segments; Select = select; Restart = restart; DocumentOf = documentOf; LastRow = lastRow;
    }

    /// <summary>From a batch's segments (B, T); documents from DocumentIds (−1 = padding) or else the attention mask
    /// (0 = padding); null when the batch carries no segments.</summary>
    public static InstructionSpans? From(LlamaBatch batch)
    {
        if (batch.Segments is not { } seg) return null;
        int B = batch.InputIds.Shape[0], T = batch.InputIds.Shape[1];
        var docs = batch.DocumentIds?.Data;
        var mask = batch.AttentionMask?.Data;
        var select = new byte[B * T];
        var restart = new byte[B * T];
        var documentOf = new int[B * T];
        var last = new List<int>();
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
            {
                int i = b * T + t;
                int s = seg.Data[i];
                if ((uint)s >= Count) throw new ArgumentException($"LlamaModel.Forward: segment id {s} at row {b}, position {t} is outside [0, {Count})");
                bool valid = docs != null ? docs[i] >= 0 : mask == null || mask[i] != 0;
                bool starts = t == 0 || (docs != null ? docs[i] != docs[i - 1] : false);
                restart[i] = (byte)(starts ? 1 : 0);
                if (!valid) { documentOf[i] = -1; continue; }
                if (starts || last.Count == 0 || documentOf[i - 1] < 0) last.Add(i);
                documentOf[i] = last.Count - 1;
                last[^1] = i;
                select[i] = (byte)(s == Instruction ? 1 : 0);
            }
        return new InstructionSpans(B, T, seg.Data, select, restart, documentOf, [.. last]);
    }

    /// <summary>x (B·T, D) → (B·T, D): each token's causal instruction context (see the file header).</summary>
    public Tensor CausalMean(Tensor x) => Ops.CausalSegmentMean(x, Select, Restart);

    /// <summary>x (B·T, D) → (documents, D): the mean of each document's instruction rows (0 for a document
    /// without instruction tokens): the pooled instruction representation.</summary>
    public Tensor Pooled(Tensor x) => Ops.GatherRows(CausalMean(x), LastRow);

    /// <summary>Segment ids as a (B·T) tensor for an embedding lookup.</summary>
    public IntTensor SegmentIds => new(Segments, B * T);
}
