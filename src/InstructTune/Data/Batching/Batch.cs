namespace InstructTune.Data.Batching;

/// <summary>
/// One training batch, row-major (B, T), what the trainer consumes.
/// <list type="bullet">
/// <item><see cref="Ids"/>: token ids; padding holds <see cref="PadId"/>.</item>
/// <item><see cref="Labels"/>: HF convention (aligned with Ids, the loss shifts); −100 on padding, on masked tokens
/// and on the first token of every document, so a packed row never asks one document to predict the next.</item>
/// <item><see cref="PositionIds"/>: restart at 0 for every document in a packed row; 0 on padding.</item>
/// <item><see cref="DocumentIds"/>: which document of its row a token belongs to (0, 1, …), −1 on padding. The
/// attention mask is block-diagonal causal: query i sees key j iff j ≤ i and DocumentIds[i] == DocumentIds[j] ≥ 0
/// (<see cref="Attends"/>). For unpacked batches it is the ordinary causal mask with right padding.</item>
/// <item><see cref="Segments"/>, <see cref="TaskIds"/>: per token (task −1 on padding), for instruction-aware
/// models and per-task loss weighting.</item>
/// <item><see cref="ExampleIndices"/>: per row, the dataset indices of its documents, in order.</item>
/// </list>
/// </summary>
public sealed record Batch(int B, int T, int[] Ids, int[] Labels, int[] PositionIds, int[] DocumentIds, byte[] Segments,
    int[] TaskIds, int[][] ExampleIndices, int PadId)
{
    /// <summary>Whether query position i may attend to key position j in row b.</summary>
    public bool Attends(int b, int i, int j) =>
        j <= i && DocumentIds[b * T + j] >= 0 && DocumentIds[b * T + i] == DocumentIds[b * T + j];

    public int RealTokens { get { int n = 0; foreach (var d in DocumentIds) if (d >= 0) n++; return n; } }

    public double PaddingShare => Ids.Length == 0 ? 0 : 1.0 - (double)RealTokens / Ids.Length;
}
