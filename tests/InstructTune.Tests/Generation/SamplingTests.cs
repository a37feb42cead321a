// Sampling rules against hand-worked distributions, and generation controls (seeds, stops, streaming).
using InstructTune.Generation;
using InstructTune.Models.Inference;
using InstructTune.Tests.Models;

namespace InstructTune.Tests.Generation;

public class SamplingTests
{
    [Fact]
    public void Top_k_and_top_p_keep_the_right_tokens()
    {
        // softmax of ln p for p = [0.1, 0.4, 0.2, 0.3]
        float[] logits = [MathF.Log(0.1f), MathF.Log(0.4f), MathF.Log(0.2f), MathF.Log(0.3f)];
        var full = LogitsSampler.Distribution(logits, 1.0, 0, 1.0);
        Assert.Equal(new[] { 0.1, 0.4, 0.2, 0.3 }, full.Select(x => Math.Round(x, 6)));
        var k2 = LogitsSampler.Distribution(logits, 1.0, 2, 1.0);          // 0.4, 0.3 renormalised
        Assert.Equal(new[] { 0, 4 / 7.0, 0, 3 / 7.0 }.Select(x => Math.Round(x, 6)), k2.Select(x => Math.Round(x, 6)));
        var p65 = LogitsSampler.Distribution(logits, 1.0, 0, 0.65);        // 0.4 + 0.3 ≥ 0.65
        Assert.Equal(new[] { 0, 4 / 7.0, 0, 3 / 7.0 }.Select(x => Math.Round(x, 6)), p65.Select(x => Math.Round(x, 6)));
        var p75 = LogitsSampler.Distribution(logits, 1.0, 0, 0.75);        // needs 0.2 too
        Assert.Equal(new[] { 0, 4 / 9.0, 2 / 9.0, 3 / 9.0 }.Select(x => Math.Round(x, 6)), p75.Select(x => Math.Round(x, 6)));
        var t2 = LogitsSampler.Distribution(logits, 2.0, 0, 1.0);          // p^(1/2) renormalised
        double z = new[] { 0.1, 0.4, 0.2, 0.3 }.Sum(Math.Sqrt);
        Assert.Equal(Math.Sqrt(0.4) / z, t2[1], 6);
    }

    [Fact]
    public void Repetition_penalty_divides_positive_and_multiplies_negative()
    {
        float[] logits = [2f, -2f, 1f];
        LogitsSampler.ApplyRepetitionPenalty(logits, [0, 1, 1], 2.0);
        Assert.Equal([1f, -4f, 1f], logits);
    }

    [Fact]
    public void Sampling_frequencies_follow_the_distribution()
    {
        float[] logits = [MathF.Log(0.1f), MathF.Log(0.4f), MathF.Log(0.2f), MathF.Log(0.3f)];
        var rng = new Random(5);
        var counts = new int[4];
        for (int i = 0; i < 20000; i++) counts[LogitsSampler.Sample(logits, 1.0, 0, 1.0, rng)]++;
        Assert.InRange(counts[1] / 20000.0, 0.38, 0.42);
        Assert.InRange(counts[0] / 20000.0, 0.09, 0.11);
    }

    [Fact]
    public void Seeds_reproduce_and_stops_and_streaming_work()
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir("llama_gqa_f32"));
        int[][] prompts = [[5, 6, 7], [9, 10, 11, 12, 13]];
        var o = new GenerationOptions { MaxNewTokens = 12, Temperature = 1.0, TopK = 20, TopP = 0.9, Seed = 42 };
        var a = Generator.Generate(model, prompts, o);
        var b = Generator.Generate(model, prompts, o);
        Assert.Equal(a[0].GeneratedIds, b[0].GeneratedIds);
        var c = Generator.Generate(model, prompts, o with { Seed = 43 });
        Assert.NotEqual(a[0].GeneratedIds.Concat(a[1].GeneratedIds), c[0].GeneratedIds.Concat(c[1].GeneratedIds));
        // Sampled generation with the cache equals generation without it (same RNG draws).
        var nc = Generator.Generate(model, prompts, o with { UseCache = false });
        Assert.Equal(a[1].GeneratedIds, nc[1].GeneratedIds);

        int stopAt = a[0].GeneratedIds[3];
        int first = Array.IndexOf(a[0].GeneratedIds, stopAt);
        var s = Generator.Generate(model, [prompts[0]], o with { StopTokenIds = [stopAt] });
        Assert.Equal(a[0].GeneratedIds[..(first + 1)], s[0].GeneratedIds);
        Assert.Equal("stop_token", s[0].StopReason);

        var streamed = new List<(int, int)>();
        var str = Generator.Generate(model, prompts, o with
        {
            OnToken = (i, t) => streamed.Add((i, t)),
            Decode = ids => string.Concat(ids.Select(i => $"<{i}>")),
            StopStrings = [$"<{a[1].GeneratedIds[2]}>"],
        });
        Assert.Equal("stop_string", str[1].StopReason);
        Assert.Equal(str[1].GeneratedIds, streamed.Where(x => x.Item1 == 1).Select(x => x.Item2));
        Assert.Equal(str[0].GeneratedIds, streamed.Where(x => x.Item1 == 0).Select(x => x.Item2));
    }

    [Fact]
    public void Repetition_penalty_changes_greedy_output()
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir("qwen2_tied_f32"));
        var plain = Generator.Generate(model, [[5, 6, 7]], new GenerationOptions { MaxNewTokens = 20 })[0].GeneratedIds;
        var pen = Generator.Generate(model, [[5, 6, 7]], new GenerationOptions { MaxNewTokens = 20, RepetitionPenalty = 5.0 })[0].GeneratedIds;
        Assert.True(pen.Distinct().Count() >= plain.Distinct().Count());
        Assert.NotEqual(plain, pen);
    }

    [Fact]
    public void Generation_stops_at_max_position_embeddings()
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir("llama_gqa_f32"));
        var r = Generator.Generate(model, [Enumerable.Range(3, 60).ToArray()], new GenerationOptions { MaxNewTokens = 10 });
        Assert.Equal(4, r[0].GeneratedIds.Length);   // 60 + 4 = 64 = max_position_embeddings
        Assert.Equal("max_position_embeddings", r[0].StopReason);
        Assert.Throws<ArgumentException>(() => Generator.Generate(model, [Enumerable.Range(0, 65).Select(i => 3 + i % 50).ToArray()], new GenerationOptions()));
    }
}
