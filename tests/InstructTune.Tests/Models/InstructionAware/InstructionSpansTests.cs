using InstructTune.Data.Batching;
using InstructTune.Data.Records;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Models.InstructionAware;

namespace InstructTune.Tests.Models.InstructionAware;

/// <summary>The plumbing of the instruction-aware variants: segment ids from the batch to the model, the causal
/// instruction mean (naive twin, finite differences, carried KV-cache state), per-document pooling under packing.</summary>
public class InstructionSpansTests
{
    private static (float[] X, byte[] Sel, byte[] Restart) Random(int N, int D, ulong seed)
    {
        var rng = new Rng(seed);
        var x = new float[N * D];
        rng.Uniform(x, -1, 1);
        var sel = new byte[N]; var restart = new byte[N];
        for (int t = 0; t < N; t++) { sel[t] = (byte)(rng.NextInt(3) == 0 ? 0 : 1); restart[t] = (byte)(t == 0 || rng.NextInt(9) == 0 ? 1 : 0); }
        return (x, sel, restart);
    }

    [Theory]
    [InlineData(1, 3)] [InlineData(7, 5)] [InlineData(65, 16)] [InlineData(300, 7)]
    public void ForwardMatchesTheDoublePrecisionDefinition(int N, int D)
    {
        var (x, sel, restart) = Random(N, D, (ulong)N);
        var y = new float[N * D]; var want = new float[N * D];
        SegmentMeanKernel.Forward(x, y, new int[N], sel, restart, N, D);
        SegmentMeanKernel.ForwardNaive(x, want, sel, restart, N, D);
        for (int i = 0; i < y.Length; i++) Assert.True(Math.Abs(y[i] - want[i]) <= 1e-6, $"[{i}] {y[i]} vs {want[i]}");
        // Before the first selected row of a run the context is exactly zero.
        Assert.Equal(0f, SegmentMeanWithNoSelection(D)[0]);
    }

    private static float[] SegmentMeanWithNoSelection(int D)
    {
        var y = new float[2 * D];
        SegmentMeanKernel.Forward(new float[2 * D], y, new int[2], [0, 0], [1, 0], 2, D);
        return y;
    }

    [Fact]
    public void GradientsMatchFiniteDifferences()
    {
        var (x, sel, restart) = Random(23, 4, 3);
        var xt = Tensor.FromArray(x, 23, 4); xt.RequiresGrad = true;
        var r = GradCheck.Check(a => Ops.CausalSegmentMean(a[0], sel, restart), [xt], eps: 1e-2, maxPerInput: 92);
        Assert.True(r.MaxError < 1e-3, r.ToString());
    }

    [Fact]
    public void CarriedStateGivesBitIdenticalResultsChunkByChunk()
    {
        int N = 41, D = 8;
        var (x, sel, _) = Random(N, D, 11);
        var noRestart = new byte[N]; noRestart[0] = 1;
        var whole = new float[N * D];
        SegmentMeanKernel.Forward(x, whole, new int[N], sel, noRestart, N, D);
        var sum = new float[D]; int count = 0;
        var pieces = new float[N * D];
        foreach (var (s, n) in new[] { (0, 17), (17, 1), (18, 1), (19, 22) })   // prefill, two decode steps, a chunk
            SegmentMeanKernel.Forward(x.AsSpan(s * D, n * D), pieces.AsSpan(s * D, n * D), new int[n], sel.AsSpan(s, n),
                new byte[n], n, D, sum, ref count);
        Assert.Equal(whole, pieces);
    }

    [Fact]
    public void PackedDocumentsPoolTheirOwnInstructionOnly()
    {
        // Row 0 packs two documents, row 1 holds one and padding.
        int[] seg = [0, 1, 1, 3, 3, 1, 2, 3, /**/ 1, 1, 1, 3, 3, 0, 0, 0];
        int[] docs = [0, 0, 0, 0, 0, 1, 1, 1, /**/ 0, 0, 0, 0, 0, -1, -1, -1];
        var batch = new LlamaBatch(new IntTensor(new int[16], 2, 8))
        {
            DocumentIds = new IntTensor(docs, 2, 8), Segments = new IntTensor(seg, 2, 8),
        };
        var spans = InstructionSpans.From(batch)!;
        Assert.Equal([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, -1, -1, -1], spans.DocumentOf);
        Assert.Equal([4, 7, 12], spans.LastRow);
        var x = Tensor.FromArray(Enumerable.Range(0, 16).Select(i => (float)i).ToArray(), 16, 1);
        Assert.Equal([1.5f, 5f, 9f], spans.Pooled(x).ToArray());          // mean of rows {1,2}, {5}, {8,9,10}
        var c = spans.CausalMean(x).ToArray();
        Assert.Equal(0f, c[0]);                                           // nothing seen yet
        Assert.Equal(1.5f, c[3]);                                         // response sees the whole instruction
        Assert.Equal(5f, c[6]);                                           // the second document restarts
    }

    [Fact]
    public void CollatedSegmentsReachTheModelBatch()
    {
        var a = new TokenizedExample([5, 6, 7, 8], [-100, -100, 7, 8], [0, 1, 3, 3], 0, 0);
        var b = new TokenizedExample([9, 10, 11], [-100, 10, 11], [1, 2, 3], 0, 0);
        var batch = Collator.Collate([a, b], new PlannedBatch([[0, 1]]), padId: 0, fixedWidth: 9);
        var mb = InstructTune.Training.Losses.InstructionObjective.ToModelBatch(batch);
        Assert.Equal([0, 1, 3, 3, 1, 2, 3, 0, 0], mb.Segments!.Data);
        Assert.Equal(mb.Segments.Data, batch.ToLlamaBatch().Segments!.Data);
        var spans = InstructionSpans.From(mb)!;
        Assert.Equal([1, 0, 0, 0, 1, 0, 0, 1, 0], spans.Restart);
        Assert.Equal([0, 1, 0, 0, 1, 0, 0, 0, 0], spans.Select);
    }

    [Fact]
    public void SegmentIdsOutsideTheFourSegmentsAreRefused()
    {
        var batch = new LlamaBatch(new IntTensor(new int[2], 1, 2)) { Segments = new IntTensor([1, 7], 1, 2) };
        var e = Assert.Throws<ArgumentException>(() => InstructionSpans.From(batch));
        Assert.Contains("segment id 7", e.Message);
    }
}
