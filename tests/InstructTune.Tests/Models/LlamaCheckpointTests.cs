// Checkpoints into and out of the trainable LlamaModel: its logits on the golden checkpoints equal PyTorch's,
// and save → load reproduces the files bit for bit.
using InstructTune.Checkpoints;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Tests.Checkpoints;

namespace InstructTune.Tests.Models;

public class LlamaCheckpointTests
{
    public static IEnumerable<object[]> Cases() => GoldenFixture.ModelCases();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Trainable_model_loaded_by_name_matches_pytorch_logits(string name)
    {
        var model = LlamaCheckpoint.Load(GoldenFixture.Dir(name));
        var g = GoldenFixture.Load(Path.Combine(GoldenFixture.Dir(name), "expected.json"));
        var s = g.Sequences[0];
        var output = model.Forward(new LlamaBatch(new IntTensor(s.Ids, 1, s.Ids.Length)));
        GoldenFixture.AssertClose(s.Logits, output.Logits!.ToArray(), 1e-4, name);
    }

    [Fact]
    public void Save_then_load_round_trips_and_f32_to_bf16_matches_torch_rounding()
    {
        using var tmp = new TempDir();
        var model = LlamaCheckpoint.Load(GoldenFixture.Dir("qwen2_tied_f32"));
        LlamaCheckpoint.Save(model, tmp["f32"]);
        LlamaCheckpoint.Save(model, tmp["bf16"], DType.BF16, maxShardBytes: 20_000);
        Assert.True(File.Exists(Path.Combine(tmp["bf16"], CheckpointFolder.IndexFile)));
        using (var a = new CheckpointFolder(GoldenFixture.Dir("qwen2_tied_f32")))
        using (var b = new CheckpointFolder(tmp["f32"]))
        {
            Assert.False(b.Contains("lm_head.weight"));
            foreach (var n in a.Names) Assert.Equal(a.ReadF32(n), b.ReadF32(n));
        }
        // torch's .to(bfloat16) of the same weights is the bf16 fixture.
        using (var a = new CheckpointFolder(GoldenFixture.Dir("qwen2_tied_bf16")))
        using (var b = new CheckpointFolder(tmp["bf16"]))
            foreach (var n in a.Names) Assert.True(a.Find(n).File.Bytes(n).SequenceEqual(b.Find(n).File.Bytes(n)), n);
        Assert.Equal("bfloat16", LlamaConfig.Load(tmp["bf16"]).TorchDtype);
    }
}
