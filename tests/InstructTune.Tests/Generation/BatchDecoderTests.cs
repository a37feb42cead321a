// The batched decode core against the PyTorch greedy goldens and against one-sequence-at-a-time generation:
// sequences that join late, leave early, sample with their own seeds, or carry their own LoRA adapter decode
// exactly as they do alone.
using InstructTune.Generation;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;
using InstructTune.Tests.Models;

namespace InstructTune.Tests.Generation;

public class BatchDecoderTests
{
    private static GoldenFixture Golden(string name, string? sub = null) =>
        GoldenFixture.Load(Path.Combine(GoldenFixture.Dir(name), sub ?? "", "expected.json"));

    [Theory]
    [InlineData("llama_gqa_f32")]
    [InlineData("qwen2_tied_f32")]
    [InlineData("mistral_sw_f32")]
    public void Staggered_joins_decode_the_pytorch_greedy_tokens(string name)
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir(name));
        var g = Golden(name);
        int n = g.Greedy[0].GeneratedIds.Length;
        var decoder = new BatchDecoder(model);
        var options = new GenerationOptions { MaxNewTokens = n };
        var seqs = new List<DecodeSequence>();
        // One new sequence joins every step while the earlier ones are mid-decode.
        for (int step = 0; decoder.Count > 0 || seqs.Count < g.Greedy.Length; step++)
        {
            if (seqs.Count < g.Greedy.Length) seqs.Add(decoder.Add(g.Greedy[seqs.Count].PromptIds, options));
            decoder.Step();
            Assert.True(step < 10 * n, "decoder does not finish");
        }
        for (int i = 0; i < g.Greedy.Length; i++)
        {
            Assert.Equal(g.Greedy[i].GeneratedIds, seqs[i].Generated);
            Assert.Equal("max_new_tokens", seqs[i].StopReason);
        }
    }

    [Fact]
    public void Sampling_per_sequence_equals_each_sequence_alone_and_removal_leaves_others_unchanged()
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir("llama_gqa_f32"));
        var g = Golden("llama_gqa_f32");
        var prompts = g.Greedy.Select(x => x.PromptIds).ToArray();
        var opts = new[]
        {
            new GenerationOptions { MaxNewTokens = 12, Temperature = 0.9, TopP = 0.9, Seed = 5 },
            new GenerationOptions { MaxNewTokens = 7, Temperature = 1.3, TopK = 20, Seed = 6 },
            new GenerationOptions { MaxNewTokens = 12, RepetitionPenalty = 1.3 },
        };
        var alone = prompts.Select((p, i) => Generator.Generate(model, [p], opts[i % opts.Length])[0].GeneratedIds).ToArray();

        var decoder = new BatchDecoder(model);
        var doomed = decoder.Add(prompts[0], opts[1], seed: 99);
        var seqs = new List<DecodeSequence>();
        for (int i = 0; i < prompts.Length; i++)
        {
            seqs.Add(decoder.Add(prompts[i], opts[i % opts.Length]));
            decoder.Step();
            if (i == 1) decoder.Remove(doomed, "cancelled");
        }
        while (decoder.Count > 0) decoder.Step();
        Assert.Equal("cancelled", doomed.StopReason);
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(alone[i], seqs[i].Generated);
        Assert.NotEqual(alone[0], Generator.Generate(model, [prompts[0]], opts[0] with { Seed = 1234 })[0].GeneratedIds);
    }

    [Fact]
    public void Per_sequence_adapters_in_one_batch_match_the_pytorch_lora_goldens()
    {
        string dir = GoldenFixture.Dir("llama_gqa_f32");
        using var model = InferenceModel.Load(dir);
        var lora = model.PrepareAdapter(LoraAdapterFile.Load(Path.Combine(dir, "lora")), "lora");
        var rs = model.PrepareAdapter(LoraAdapterFile.Load(Path.Combine(dir, "lora_rs")), "lora_rs");
        var gBase = Golden("llama_gqa_f32");
        var gLora = Golden("llama_gqa_f32", "lora");
        var gRs = Golden("llama_gqa_f32", "lora_rs");
        var decoder = new BatchDecoder(model);
        var o = new GenerationOptions { MaxNewTokens = gBase.Greedy[0].GeneratedIds.Length };
        var b = gBase.Greedy.Select(x => decoder.Add(x.PromptIds, o)).ToList();
        var l = gLora.Greedy.Select(x => decoder.Add(x.PromptIds, o, adapter: lora)).ToList();
        var r = gRs.Greedy.Select(x => decoder.Add(x.PromptIds, o, adapter: rs)).ToList();
        while (decoder.Count > 0) decoder.Step();
        for (int i = 0; i < b.Count; i++) Assert.Equal(gBase.Greedy[i].GeneratedIds, b[i].Generated);
        for (int i = 0; i < l.Count; i++) Assert.Equal(gLora.Greedy[i].GeneratedIds, l[i].Generated);
        for (int i = 0; i < r.Count; i++) Assert.Equal(gRs.Greedy[i].GeneratedIds, r[i].Generated);
    }

    [Fact]
    public void Stop_tokens_and_bad_prompts()
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir("llama_gqa_f32"));
        var g = Golden("llama_gqa_f32");
        var expected = g.Greedy[0].GeneratedIds;
        var decoder = new BatchDecoder(model);
        var s = decoder.Add(g.Greedy[0].PromptIds, new GenerationOptions { MaxNewTokens = 50, StopTokenIds = [expected[2]] });
        while (decoder.Count > 0) decoder.Step();
        Assert.Equal("stop_token", s.StopReason);
        Assert.Equal(expected[..(Array.IndexOf(expected, expected[2]) + 1)], s.Generated);
        Assert.True(decoder.Add([1, 2], new GenerationOptions { MaxNewTokens = 0 }).Finished);
        Assert.Throws<ArgumentException>(() => decoder.Add([], new GenerationOptions()));
        Assert.Throws<ArgumentOutOfRangeException>(() => decoder.Add([model.Config.VocabSize], new GenerationOptions()));
    }
}
