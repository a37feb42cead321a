// q8_0 checkpoints (`itune convert --dtype q8_0`) and q8_0 at load (`--quantize q8_0`):
//   * the file holds ggml's block_q8_0 layout, checked by reading the raw bytes by hand (half scale = max|block|/127,
//     then 32 int8 quants within half a step of w/d) against the float32 source;
//   * it scores within the stated q8_0 tolerance of PyTorch's float32 goldens, mapped in place (WeightBytes ≈ 1.06 B
//     per weight), and converts back to float32 as the dequantised blocks;
//   * `itune serve` on it answers as `itune generate` on it does;
//   * quantising a float32 checkpoint at load drops the float32 pages from resident memory;
//   * bad --dtype and training on a q8_0 checkpoint are refused with a clear message.
using System.Buffers.Binary;
using System.Net;
using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Cli.Serve;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Serving;
using InstructTune.Tests.Checkpoints;
using InstructTune.Tests.Serving;

namespace InstructTune.Tests.Models;

[Collection("Console")]
public class Q8CheckpointTests
{
    private static string ConvertQ8(string src, TempDir tmp, string name = "q8")
    {
        var (rc, _, err) = CliCapture.Run("convert", "--model", src, "--out", tmp[name], "--dtype", "q8_0");
        Assert.True(rc == 0, err);
        return tmp[name];
    }

    [Fact]
    public void The_file_holds_ggml_q8_0_blocks_of_the_source_weights()
    {
        using var tmp = new TempDir();
        string src = GoldenFixture.Dir("llama_gqa_f32"), dst = ConvertQ8(src, tmp);
        using var f32 = SafetensorsFile.Open(Path.Combine(src, "model.safetensors"));
        using var q8 = SafetensorsFile.Open(Path.Combine(dst, "model.safetensors"));
        Assert.True(q8.Metadata.ContainsKey(WeightMatrix.Q8MetadataKey));
        foreach (var name in new[] { "model.layers.0.self_attn.v_proj.weight", "model.layers.1.mlp.down_proj.weight", "lm_head.weight", "model.embed_tokens.weight" })
        {
            var info = q8.Info(name);
            Assert.Equal(DType.U8, info.DType);
            var w = f32.ReadF32(name);
            int rows = (int)f32.Info(name).Shape[0], cols = (int)f32.Info(name).Shape[1];
            Assert.Equal(new long[] { rows, cols / 32 * 34 }, info.Shape);
            var bytes = q8.Bytes(info);
            for (int blk = 0; blk < rows * cols / 32; blk++)
            {
                var src32 = w.AsSpan(blk * 32, 32);
                float amax = 0;
                foreach (var v in src32) amax = Math.Max(amax, Math.Abs(v));
                float d = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes.Slice(blk * 34, 2));
                Assert.Equal((float)(Half)(amax / 127f), d);
                for (int j = 0; j < 32; j++)
                {
                    float deq = d * (sbyte)bytes[blk * 34 + 2 + j];
                    Assert.True(Math.Abs(deq - src32[j]) <= d * 0.5f + amax * 2e-3f, $"{name} block {blk} value {j}: {deq} vs {src32[j]}");
                }
            }
        }
        // Norms stay float32.
        Assert.Equal(DType.F32, q8.Info("model.norm.weight").DType);
    }

    [Fact]
    public void A_q8_0_checkpoint_scores_within_tolerance_maps_in_place_and_converts_back()
    {
        using var tmp = new TempDir();
        string src = GoldenFixture.Dir("llama_gqa_f32"), dst = ConvertQ8(src, tmp);
        var g = GoldenFixture.Load(Path.Combine(src, "expected.json"));
        File.WriteAllLines(tmp["in.jsonl"], g.Sequences.Select(s => JsonSerializer.Serialize(new { ids = s.Ids })));
        var (rc, _, err) = CliCapture.Run("score", "--model", dst, "--input", tmp["in.jsonl"], "--output", tmp["out.jsonl"]);
        Assert.True(rc == 0, err);
        QuantizeQ8Tests.AssertNearPyTorchFloat32(tmp["out.jsonl"], g, "q8_0 checkpoint");

        using (var f = InferenceModel.Load(src))
        using (var m = InferenceModel.Load(dst))
        {
            Assert.True(m.IsQ8 && m.Embed.IsQ8 && m.LmHead.IsQ8);
            Assert.True(m.WeightBytes < f.WeightBytes * 0.27, $"q8_0 holds {m.WeightBytes} bytes against float32's {f.WeightBytes}");
            // Back to float32: the dequantised blocks.
            var (rc2, _, err2) = CliCapture.Run("convert", "--model", dst, "--out", tmp["back"], "--dtype", "float32");
            Assert.True(rc2 == 0, err2);
            using var back = InferenceModel.Load(tmp["back"]);
            Assert.False(back.IsQ8);
            Assert.Equal(m.Layers[1].Down.W.ToF32(), back.Layers[1].Down.W.ToF32());
            Assert.Equal(m.Embed.ToF32(), back.Embed.ToF32());
        }
    }

    [Fact]
    public async Task Serve_on_a_q8_0_checkpoint_answers_as_generate_does()
    {
        using var tmp = new TempDir();
        string dst = ConvertQ8(ServeTestModel.Model, tmp);
        using var served = ServedModel.Load(dst, [], new ServeLimits(), name: "base");
        var app = ServeHost.Build(served, new ServeHostOptions { Port = 0, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning });
        await app.StartAsync();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri(ServeHost.BoundUrl(app)), Timeout = TimeSpan.FromMinutes(2) };
            var body = JsonSerializer.Serialize(new { model = "base", prompt = "Once upon a time", max_tokens = 10, temperature = 0 });
            using var resp = await client.PostAsync("/v1/completions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
            using var got = JsonDocument.Parse(await resp.Content.ReadAsStringAsync());
            var (rc, output, err) = CliCapture.Run("generate", "--model", dst, "--prompt", "Once upon a time", "--max-new-tokens", "10", "--json");
            Assert.True(rc == 0, err);
            using var gen = JsonDocument.Parse(output);
            Assert.Equal(gen.RootElement.GetProperty("text").GetString(), got.RootElement.GetProperty("choices")[0].GetProperty("text").GetString());
        }
        finally { await app.StopAsync(); await app.DisposeAsync(); }
    }

    [Fact]
    public void Quantising_at_load_drops_the_float32_pages()
    {
        using var tmp = new TempDir();
        var cfg = new LlamaConfig
        {
            ModelType = "llama", HiddenSize = 256, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 4,
            IntermediateSize = 1024, VocabSize = 256, RmsNormEps = 1e-5, MaxPositionEmbeddings = 64,
        };
        RandomCheckpoint.Create(cfg, tmp["m"], 3, DType.F32);
        using var model = InferenceModel.Load(tmp["m"]);
        Scorer.Score(model, [[1, 2, 3, 4]]);   // every weight page read once: resident
        long before = InstructTune.Common.MappedMemory.ResidentBytes(tmp["m"]);
        model.QuantizeQ8_0();
        Scorer.Score(model, [[1, 2, 3, 4]]);
        long after = InstructTune.Common.MappedMemory.ResidentBytes(tmp["m"]);
        // What may stay: the embedding (looked up by row, 256 KiB), norms, a page at each tensor's edges.
        Assert.True(before > 7_000_000, $"float32 pages resident before: {before}");
        Assert.True(after < before / 10, $"mapped resident bytes {before} → {after} after quantising");
    }

    [Fact]
    public void Bad_dtype_and_training_on_q8_0_are_refused()
    {
        using var tmp = new TempDir();
        var (rc, _, err) = CliCapture.Run("convert", "--model", GoldenFixture.Dir("llama_gqa_f32"), "--out", tmp["x"], "--dtype", "q4_0");
        Assert.Equal(2, rc);
        Assert.Contains("--dtype 'q4_0'", err);
        string dst = ConvertQ8(GoldenFixture.Dir("llama_gqa_f32"), tmp);
        var e = Assert.Throws<InvalidDataException>(() => LlamaCheckpoint.Load(dst));
        Assert.Contains("is q8_0", e.Message);
    }
}
