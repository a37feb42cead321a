// The inference model against the PyTorch reference of tools/golden/models_make.py: logits, next-token
// log-probs and loss within 1e-4, greedy continuations equal, with and without the KV cache.
using InstructTune.Generation;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;

namespace InstructTune.Tests.Models;

public class GoldenModelTests
{
    private const double Tol = 1e-4;

    public static IEnumerable<object[]> Cases() => GoldenFixture.ModelCases();

    public static IEnumerable<object[]> AdapterCases() => [["lora"], ["lora_rs"]];

    private static void CheckScores(InferenceModel model, GoldenFixture g, string name)
    {
        var results = Scorer.Score(model, g.Sequences.Select(s => s.Ids).ToList(), keepLogits: true);
        for (int i = 0; i < g.Sequences.Length; i++)
        {
            var e = g.Sequences[i];
            GoldenFixture.AssertClose(e.Logits, results[i].Logits, Tol, $"{name} seq {i} logits");
            Assert.Equal(e.NextTokenLogprobs.Length, results[i].NextTokenLogprobs.Length);
            for (int t = 0; t < e.NextTokenLogprobs.Length; t++)
                Assert.True(Math.Abs(e.NextTokenLogprobs[t] - results[i].NextTokenLogprobs[t]) <= Tol,
                    $"{name} seq {i} logprob {t}: {e.NextTokenLogprobs[t]} vs {results[i].NextTokenLogprobs[t]}");
            if (e.Loss is double loss) Assert.True(Math.Abs(loss - results[i].Loss!.Value) <= Tol, $"{name} seq {i} loss {loss} vs {results[i].Loss}");
            else Assert.Null(results[i].Loss);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Scores_match_pytorch(string name)
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir(name));
        CheckScores(model, GoldenFixture.Load(Path.Combine(GoldenFixture.Dir(name), "expected.json")), name);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Left_and_right_padded_batches_score_like_single_sequences(string name)
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir(name));
        var g = GoldenFixture.Load(Path.Combine(GoldenFixture.Dir(name), "expected.json"));
        int T = g.Sequences.Max(s => s.Ids.Length);
        // Row 0 left-padded, row 1 right-padded, row 2 left-padded; pad id 0 with mask 0.
        var ids = new int[3][]; var mask = new int[3][];
        for (int b = 0; b < 3; b++)
        {
            var s = g.Sequences[b].Ids;
            int pad = T - s.Length;
            bool left = b != 1;
            ids[b] = left ? [.. Enumerable.Repeat(0, pad), .. s] : [.. s, .. Enumerable.Repeat(0, pad)];
            mask[b] = left ? [.. Enumerable.Repeat(0, pad), .. Enumerable.Repeat(1, s.Length)] : [.. Enumerable.Repeat(1, s.Length), .. Enumerable.Repeat(0, pad)];
        }
        var r = Scorer.ScorePadded(model, ids, mask, keepLogits: true);
        for (int b = 0; b < 3; b++)
            GoldenFixture.AssertClose(g.Sequences[b].Logits, r[b].Logits, Tol, $"{name} padded row {b}");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_with_and_without_cache_matches_pytorch(string name)
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir(name));
        var g = GoldenFixture.Load(Path.Combine(GoldenFixture.Dir(name), "expected.json"));
        var prompts = g.Greedy.Select(x => x.PromptIds).ToList();
        int n = g.Greedy[0].GeneratedIds.Length;
        var cached = Generator.Generate(model, prompts, new GenerationOptions { MaxNewTokens = n });
        var uncached = Generator.Generate(model, prompts, new GenerationOptions { MaxNewTokens = n, UseCache = false });
        for (int i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(g.Greedy[i].GeneratedIds, cached[i].GeneratedIds);
            Assert.Equal(g.Greedy[i].GeneratedIds, uncached[i].GeneratedIds);
            var single = Generator.Generate(model, [prompts[i]], new GenerationOptions { MaxNewTokens = n });
            Assert.Equal(g.Greedy[i].GeneratedIds, single[0].GeneratedIds);
        }
    }

    [Fact]
    public void Left_padded_prompt_batch_generates_like_pytorch()
    {
        string dir = GoldenFixture.Dir("mistral_sw_f32");
        using var model = InferenceModel.Load(dir);
        var g = GoldenFixture.Load(Path.Combine(dir, "expected.json"));
        int T = g.Greedy.Max(x => x.PromptIds.Length);
        var ids = g.Greedy.Select(x => Enumerable.Repeat(0, T - x.PromptIds.Length).Concat(x.PromptIds).ToArray()).ToArray();
        var mask = g.Greedy.Select(x => Enumerable.Repeat(0, T - x.PromptIds.Length).Concat(Enumerable.Repeat(1, x.PromptIds.Length)).ToArray()).ToArray();
        var r = Generator.Generate(model, Generator.StripPadding(ids, mask), new GenerationOptions { MaxNewTokens = g.Greedy[0].GeneratedIds.Length });
        for (int i = 0; i < g.Greedy.Length; i++) Assert.Equal(g.Greedy[i].GeneratedIds, r[i].GeneratedIds);
    }

    [Theory]
    [MemberData(nameof(AdapterCases))]
    public void Lora_adapter_scores_and_generates_like_pytorch(string adapter)
    {
        string dir = GoldenFixture.Dir("llama_gqa_f32");
        using var model = InferenceModel.Load(dir);
        var lora = LoraAdapterFile.Load(Path.Combine(dir, adapter));
        Assert.Equal(2.0f, lora.Scale);   // lora: 8/4; lora_rs: 4/√4
        model.ApplyAdapter(lora);
        var g = GoldenFixture.Load(Path.Combine(dir, adapter, "expected.json"));
        CheckScores(model, g, adapter);
        var gen = Generator.Generate(model, g.Greedy.Select(x => x.PromptIds).ToList(),
            new GenerationOptions { MaxNewTokens = g.Greedy[0].GeneratedIds.Length });
        for (int i = 0; i < g.Greedy.Length; i++) Assert.Equal(g.Greedy[i].GeneratedIds, gen[i].GeneratedIds);
    }

    [Fact]
    public void Base_model_differs_from_adapted_golden_so_the_adapter_test_can_fail()
    {
        string dir = GoldenFixture.Dir("llama_gqa_f32");
        using var model = InferenceModel.Load(dir);
        var g = GoldenFixture.Load(Path.Combine(dir, "lora", "expected.json"));
        var r = Scorer.Score(model, [g.Sequences[0].Ids], keepLogits: true)[0];
        double maxDiff = g.Sequences[0].Logits.Zip(r.Logits!, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxDiff > 0.1, $"adapter changes logits by only {maxDiff}");
    }

    [Fact]
    public void Position_ids_are_used_and_rope_depends_only_on_relative_positions()
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir("llama_gqa_f32"));
        var g = GoldenFixture.Load(Path.Combine(GoldenFixture.Dir("llama_gqa_f32"), "expected.json"));
        var s = g.Sequences[0];
        int T = s.Ids.Length;
        int[][] ids = [s.Ids], mask = [Enumerable.Repeat(1, T).ToArray()];
        // A constant shift of every position leaves q·k (hence the logits) unchanged: RoPE is relative.
        var shifted = Scorer.ScorePadded(model, ids, mask, [Enumerable.Range(7, T).ToArray()], keepLogits: true)[0];
        GoldenFixture.AssertClose(s.Logits, shifted.Logits, 1e-4, "shifted positions");
        // Stretching the gaps changes them: the positions are really used.
        var stretched = Scorer.ScorePadded(model, ids, mask, [Enumerable.Range(0, T).Select(t => 2 * t).ToArray()], keepLogits: true)[0];
        Assert.True(s.Logits.Zip(stretched.Logits!, (a, b) => Math.Abs(a - b)).Max() > 1e-2);
    }

    [Fact]
    public void Disposed_model_refuses_to_run()
    {
        var model = InferenceModel.Load(GoldenFixture.Dir("llama_gqa_bf16"));
        model.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Scorer.Score(model, [[1, 2, 3]]));
    }

    [Fact]
    public void Bf16_checkpoint_stays_bf16_in_memory()
    {
        using var f32 = InferenceModel.Load(GoldenFixture.Dir("llama_gqa_f32"));
        using var bf16 = InferenceModel.Load(GoldenFixture.Dir("llama_gqa_bf16"));
        Assert.True(bf16.Layers[0].Q.W.IsBf16);
        Assert.Equal(f32.WeightBytes, 2 * bf16.WeightBytes);
    }

    [Fact]
    public void Position_beyond_max_position_embeddings_is_refused()
    {
        using var model = InferenceModel.Load(GoldenFixture.Dir("llama_gqa_f32"));
        var ids = Enumerable.Range(0, model.Config.MaxPositionEmbeddings + 1).Select(i => 3 + i % 50).ToArray();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Scorer.Score(model, [ids]));
        Assert.Contains("max_position_embeddings", e.Message);
    }
}
