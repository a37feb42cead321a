using InstructTune.Data.Batching;
using InstructTune.Data.Records;
using InstructTune.Engine.Tensors;
using InstructTune.Models;

namespace InstructTune.Tests.Data;

/// <summary>
/// Packing exactness with the real LlamaModel (tiny random config, GQA): for every document of every packed row,
/// the summed loss over that document's labels in the packed batch equals the summed loss of the same example
/// run alone, within float32 rounding. Control: without document ids the packed losses differ.
/// </summary>
public class PackingLlamaTests
{
    private static readonly LlamaConfig Tiny = new()
    {
        VocabSize = 50, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 2,
        NumAttentionHeads = 4, NumKeyValueHeads = 2, MaxPositionEmbeddings = 64,
    };

    private static float DocLoss(LlamaModel model, Batch batch, int row, int doc, bool useDocIds)
    {
        int T = batch.T;
        var ids = batch.Ids[(row * T)..((row + 1) * T)];
        var labels = new int[T];
        for (int t = 0; t < T; t++) labels[t] = batch.DocumentIds[row * T + t] == doc ? batch.Labels[row * T + t] : TokenizedExample.IgnoreIndex;
        var docs = batch.DocumentIds[(row * T)..((row + 1) * T)];
        var input = new LlamaBatch(new IntTensor(ids, 1, T))
        {
            Labels = new IntTensor(labels, 1, T),
            PositionIds = new IntTensor(batch.PositionIds[(row * T)..((row + 1) * T)], 1, T),
            AttentionMask = new IntTensor(docs.Select(d => d >= 0 ? 1 : 0).ToArray(), 1, T),
            DocumentIds = useDocIds ? new IntTensor(docs, 1, T) : null,
        };
        return model.Forward(input, new LlamaForwardOptions { ReturnLogits = false, Reduction = LossReduction.Sum }).Loss!.Item();
    }

    [Fact]
    public void PackedLossesEqualAloneWithLlamaModel()
    {
        var model = new LlamaModel(Tiny);
        model.InitializeWeights(7, std: 0.2f);
        var rng = new Random(4);
        var examples = new[] { 9, 14, 6, 11, 4, 17, 8 }.Select((len, k) =>
        {
            var ids = Enumerable.Range(0, len).Select(_ => rng.Next(3, Tiny.VocabSize)).ToArray();
            ids[0] = 1;
            var labels = ids.Select((id, i) => i >= len / 3 ? id : TokenizedExample.IgnoreIndex).ToArray();
            return new TokenizedExample(ids, labels, new byte[len], k, 0);
        }).ToList();
        var plan = BatchPlanner.Plan(examples.Select(e => e.Length).ToArray(), new BatchOptions(BatchMode.Packed, BatchSize: 2, SeqLen: 24), 1, 0);
        int compared = 0, packedDocs = 0;
        foreach (var planned in plan)
        {
            var batch = Collator.Collate(examples, planned, padId: 0, fixedWidth: 24);
            for (int b = 0; b < batch.B; b++)
                for (int d = 0; d < planned.Rows[b].Length; d++)
                {
                    var alone = Collator.Collate(examples, new PlannedBatch([[planned.Rows[b][d]]]), padId: 0);
                    float single = DocLoss(model, alone, 0, 0, true);
                    float packed = DocLoss(model, batch, b, d, true);
                    Assert.True(Math.Abs(single - packed) <= 1e-5f * Math.Max(1, Math.Abs(single)), $"doc {d}: alone {single}, packed {packed}");
                    if (d > 0)
                    {
                        packedDocs++;
                        float leaky = DocLoss(model, batch, b, d, false);
                        Assert.True(Math.Abs(single - leaky) > 1e-3f, "without document ids the losses should differ");
                    }
                    compared++;
                }
        }
        Assert.Equal(examples.Count, compared);
        Assert.True(packedDocs >= 2);
    }
}

public class LlamaBatchAdapterTests
{
    [Fact]
    public void PackedBatchLossEqualsTheSumOfItsExamplesAlone()
    {
        var config = new LlamaConfig { VocabSize = 40, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2, NumKeyValueHeads = 1 };
        var model = new LlamaModel(config);
        model.InitializeWeights(3, std: 0.3f);
        var rng = new Random(8);
        var examples = new[] { 5, 9, 7, 12 }.Select((len, k) =>
        {
            var ids = Enumerable.Range(0, len).Select(_ => rng.Next(3, 40)).ToArray();
            return new TokenizedExample(ids, ids.Select((id, i) => i >= 2 ? id : TokenizedExample.IgnoreIndex).ToArray(), new byte[len], k, 0);
        }).ToList();
        var packed = Collator.Collate(examples, new PlannedBatch([[3, 0], [1, 2]]), padId: 0, fixedWidth: 17);
        var options = new LlamaForwardOptions { ReturnLogits = false, Reduction = LossReduction.Sum };
        var whole = model.Forward(packed.ToLlamaBatch(), options);
        float sum = 0;
        int tokens = 0;
        for (int i = 0; i < examples.Count; i++)
        {
            var alone = model.Forward(Collator.Collate(examples, new PlannedBatch([[i]]), 0).ToLlamaBatch(), options);
            sum += alone.Loss!.Item();
            tokens += alone.LossTokens;
        }
        Assert.Equal(tokens, whole.LossTokens);
        Assert.Equal(sum, whole.Loss!.Item(), 3e-4f);
    }
}
