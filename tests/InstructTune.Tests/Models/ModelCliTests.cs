// itune init / score / generate / convert end to end, checked against the PyTorch goldens.
using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Cli;
using InstructTune.Models;
using InstructTune.Tests.Checkpoints;

namespace InstructTune.Tests.Models;

[Collection("Console")]
public class ModelCliTests
{
    private static (int Rc, string Out, string Err) Run(params string[] args) => CliCapture.Run(args);

    [Fact]
    public void Score_matches_pytorch_and_names_bad_lines()
    {
        using var tmp = new TempDir();
        string dir = GoldenFixture.Dir("mistral_sw_bf16");
        var g = GoldenFixture.Load(Path.Combine(dir, "expected.json"));
        File.WriteAllLines(tmp["in.jsonl"], g.Sequences.Select(s => JsonSerializer.Serialize(new { ids = s.Ids })));
        var (rc, _, err) = Run("score", "--model", dir, "--input", tmp["in.jsonl"], "--output", tmp["out.jsonl"], "--logits");
        Assert.True(rc == 0, err);
        var lines = File.ReadAllLines(tmp["out.jsonl"]);
        Assert.Equal(g.Sequences.Length, lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            using var d = JsonDocument.Parse(lines[i]);
            var e = g.Sequences[i];
            Assert.Equal(e.Ids, d.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
            var lp = d.RootElement.GetProperty("next_token_logprobs").EnumerateArray().Select(x => x.GetDouble()).ToArray();
            for (int t = 0; t < lp.Length; t++) Assert.True(Math.Abs(lp[t] - e.NextTokenLogprobs[t]) <= 1e-4);
            if (e.Loss is double loss) Assert.True(Math.Abs(d.RootElement.GetProperty("loss").GetDouble() - loss) <= 1e-4);
            var logits = d.RootElement.GetProperty("logits").EnumerateArray().SelectMany(r => r.EnumerateArray().Select(x => x.GetSingle())).ToArray();
            GoldenFixture.AssertClose(e.Logits, logits, 1e-4, "cli logits");
        }

        File.WriteAllLines(tmp["bad.jsonl"], ["{\"ids\":[1,2]}", "", "{\"ids\":[1,\"x\"]}"]);
        (rc, _, err) = Run("score", "--model", dir, "--input", tmp["bad.jsonl"]);
        Assert.Equal(2, rc);
        Assert.Contains("bad.jsonl:3", err);
        File.WriteAllLines(tmp["long.jsonl"], [JsonSerializer.Serialize(new { ids = Enumerable.Range(0, 65).Select(i => 3 + i % 50) })]);
        (rc, _, err) = Run("score", "--model", dir, "--input", tmp["long.jsonl"]);
        Assert.Equal(2, rc);
        Assert.Contains("max_position_embeddings", err);
    }

    [Theory]
    [InlineData("llama3_rope_bf16", null)]
    [InlineData("llama_gqa_f32", "lora")]
    public void Generate_json_equals_pytorch_greedy(string model, string? adapter)
    {
        string dir = GoldenFixture.Dir(model);
        var g = GoldenFixture.Load(adapter == null ? Path.Combine(dir, "expected.json") : Path.Combine(dir, adapter, "expected.json"));
        var gr = g.Greedy[0];
        List<string> args = ["generate", "--model", dir, "--prompt-ids", string.Join(",", gr.PromptIds),
            "--max-new-tokens", gr.GeneratedIds.Length.ToString(), "--ignore-eos", "--json"];
        if (adapter != null) args.AddRange(["--adapter", Path.Combine(dir, adapter)]);
        var (rc, output, err) = Run([.. args]);
        Assert.True(rc == 0, err);
        using var d = JsonDocument.Parse(output);
        Assert.Equal(gr.PromptIds, d.RootElement.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(gr.GeneratedIds, d.RootElement.GetProperty("generated_ids").EnumerateArray().Select(x => x.GetInt32()));
    }

    [Fact]
    public void Generate_clamps_to_max_positions_with_a_warning_and_refuses_long_prompts()
    {
        string dir = GoldenFixture.Dir("llama_gqa_f32");
        var (rc, output, err) = Run("generate", "--model", dir, "--prompt-ids", string.Join(",", Enumerable.Range(3, 60)),
            "--max-new-tokens", "10", "--ignore-eos", "--json");
        Assert.Equal(0, rc);
        Assert.Contains("warning", err);
        using var d = JsonDocument.Parse(output);
        Assert.Equal(4, d.RootElement.GetProperty("generated_ids").GetArrayLength());
        (rc, _, err) = Run("generate", "--model", dir, "--prompt-ids", string.Join(",", Enumerable.Range(0, 64).Select(i => 3 + i % 50)));
        Assert.Equal(2, rc);
        Assert.Contains("max_position_embeddings", err);
    }

    [Fact]
    public void Convert_f32_to_bf16_equals_torch_rounding_and_shards()
    {
        using var tmp = new TempDir();
        var (rc, _, err) = Run("convert", "--model", GoldenFixture.Dir("llama_gqa_f32"), "--out", tmp["bf16"], "--dtype", "bfloat16", "--shard-size", "100KB");
        Assert.True(rc == 0, err);
        Assert.True(File.Exists(Path.Combine(tmp["bf16"], CheckpointFolder.IndexFile)));
        using (var a = new CheckpointFolder(GoldenFixture.Dir("llama_gqa_bf16")))
        using (var b = new CheckpointFolder(tmp["bf16"]))
        {
            Assert.Equal(a.Names.OrderBy(x => x), b.Names.OrderBy(x => x));
            foreach (var n in a.Names) Assert.True(a.Find(n).File.Bytes(n).SequenceEqual(b.Find(n).File.Bytes(n)), n);
        }
        Assert.Equal("bfloat16", LlamaConfig.Load(tmp["bf16"]).TorchDtype);
        (rc, _, err) = Run("convert", "--model", tmp["bf16"], "--out", tmp["f32"], "--dtype", "float32");
        Assert.True(rc == 0, err);
        Assert.True(File.Exists(Path.Combine(tmp["f32"], "model.safetensors")));
    }

    [Fact]
    public void Init_writes_a_deterministic_hf_checkpoint_at_init_scale()
    {
        using var tmp = new TempDir();
        var cfg = LlamaConfig.Load(GoldenFixture.Dir("qwen2_tied_f32")) with { VocabSize = 500, HiddenSize = 128, NumAttentionHeads = 4 };
        File.WriteAllText(tmp["config.json"], cfg.ToJson());
        Assert.Equal(0, Run("init", "--config", tmp["config.json"], "--out", tmp["a"], "--seed", "7", "--dtype", "bfloat16").Rc);
        Assert.Equal(0, Run("init", "--config", tmp["config.json"], "--out", tmp["b"], "--seed", "7", "--dtype", "bfloat16").Rc);
        Assert.Equal(0, Run("init", "--config", tmp["config.json"], "--out", tmp["c"], "--seed", "8").Rc);
        Assert.Equal(File.ReadAllBytes(Path.Combine(tmp["a"], "model.safetensors")), File.ReadAllBytes(Path.Combine(tmp["b"], "model.safetensors")));
        using var ck = new CheckpointFolder(tmp["c"]);
        var w = ck.ReadF32("model.layers.1.mlp.down_proj.weight");
        double mean = w.Average(x => (double)x), std = Math.Sqrt(w.Average(x => (double)x * x) - mean * mean);
        Assert.InRange(std, 0.0195, 0.0205);
        Assert.InRange(mean, -0.001, 0.001);
        Assert.All(ck.ReadF32("model.norm.weight"), x => Assert.Equal(1f, x));
        Assert.All(ck.ReadF32("model.layers.0.self_attn.q_proj.bias"), x => Assert.Equal(0f, x));
        Assert.False(ck.Contains("lm_head.weight"));
        using var model = InstructTune.Models.Inference.InferenceModel.Load(tmp["a"]);
        Assert.Empty(model.UnusedTensors);
        Assert.True(model.Layers[0].Q.W.IsBf16);
    }
}

[Collection("Console")]
public class ModelCliTokenizerTests
{
    [Fact]
    public void Text_prompts_use_the_folder_tokenizer()
    {
        string src = TestPaths.SharedTestData("tokenizers", "llama2");
        if (!Directory.Exists(src)) return;   // shared data absent: nothing to check against
        using var tmp = new TempDir();
        var cfg = new LlamaConfig { VocabSize = 32000, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 1,
            NumAttentionHeads = 2, NumKeyValueHeads = 1, MaxPositionEmbeddings = 128, EosTokenIds = [2], BosTokenId = 1 };
        RandomCheckpoint.Create(cfg, tmp.Path, 1, DType.F32);
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" })
            File.Copy(Path.Combine(src, f), tmp[f]);
        var (rc, o, e) = TestConsole.Run("generate", "--model", tmp.Path, "--prompt", "Hello world", "--max-new-tokens", "3", "--json");
        Assert.True(rc == 0, e);
        using var d = JsonDocument.Parse(o);
        // Llama-2's sentencepiece: <s> ▁Hello ▁world
        Assert.Equal([1, 15043, 3186], d.RootElement.GetProperty("prompt_ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(JsonValueKind.String, d.RootElement.GetProperty("text").ValueKind);

        File.WriteAllText(tmp["in.jsonl"], "{\"text\":\"Hello world\"}\n");
        (rc, o, e) = TestConsole.Run("score", "--model", tmp.Path, "--input", tmp["in.jsonl"]);
        Assert.True(rc == 0, e);
        using var s = JsonDocument.Parse(o);
        Assert.Equal(2, s.RootElement.GetProperty("next_token_logprobs").GetArrayLength());
    }
}

[Collection("Console")]
public class ModelCliStreamingTests
{
    [Fact]
    public void Generate_streams_ids_without_json_and_f16_checkpoints_score_close_to_pytorch()
    {
        string dir = GoldenFixture.Dir("qwen2_tied_f32");
        var g = GoldenFixture.Load(Path.Combine(dir, "expected.json"));
        var gr = g.Greedy[1];
        var (rc, o, e) = TestConsole.Run("generate", "--model", dir, "--prompt-ids", string.Join(",", gr.PromptIds),
            "--max-new-tokens", gr.GeneratedIds.Length.ToString(), "--ignore-eos");
        Assert.True(rc == 0, e);
        Assert.Equal(gr.GeneratedIds, o.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse));

        // float16 weights (converted at load to float32): logits within f16 rounding of the f32 golden.
        using var tmp = new TempDir();
        CheckpointConverter.Convert(dir, tmp.Path, DType.F16);
        using var model = InstructTune.Models.Inference.InferenceModel.Load(tmp.Path);
        var r = InstructTune.Models.Inference.Scorer.Score(model, [g.Sequences[0].Ids], keepLogits: true)[0];
        GoldenFixture.AssertClose(g.Sequences[0].Logits, r.Logits, 0.1, "f16 logits");
        double worst = g.Sequences[0].Logits.Zip(r.Logits!, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst > 1e-6, "f16 rounding should show");
    }
}
