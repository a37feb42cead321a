// itune export gguf against llama.cpp itself (LLamaSharp 0.30 + LLamaSharp.Backend.Cpu, test dependencies only;
// flash attention off and an F32 KV cache so its arithmetic is plain float32):
//   * the PyTorch-golden checkpoints (Llama GQA, Llama-3 RoPE scaling with head_dim ≠ hidden/heads, Qwen2 with
//     biases and tied embeddings, Mistral) and a merged LoRA: llama.cpp's logits of every position within 1e-3 of
//     `itune score` (our Scorer) in f32, and its greedy 32 tokens equal ours; q8_0 within a stated tolerance;
//     the LoRA also as a GGUF adapter applied by llama.cpp on the f32 base;
//   * tiny random models carrying real tokenizers (Llama-2 SentencePiece, Llama-3 and Qwen2.5 byte-level BPE):
//     llama.cpp's token ids of 50 varied strings equal `itune tokenize --add-special-tokens`.
// The golden checkpoints have 96-token vocabularies and no tokenizer; a synthetic byte-level vocabulary of 96
// tokens is written beside a copy of them so llama.cpp can load the file (ids are fed directly there).
using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Cli;
using InstructTune.Export.Gguf;
using InstructTune.Generation;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;
using InstructTune.Tests.Checkpoints;
using InstructTune.Tests.Models;
using InstructTune.Tokenizers;
using LLama;
using Xunit.Abstractions;
using LLama.Common;
using LLama.Native;

namespace InstructTune.Tests.Export;

/// <summary>A GGUF file opened in llama.cpp: token ids, logits of every position, greedy decoding.</summary>
internal sealed class LlamaCpp : IDisposable
{
    private readonly ModelParams _p;
    private readonly LLamaWeights _weights;
    private readonly LoraAdapter? _lora;

    public LlamaCpp(string gguf, string? loraGguf = null)
    {
        _p = new ModelParams(gguf)
        {
            ContextSize = 128, BatchSize = 128, UBatchSize = 128, Threads = 2, BatchThreads = 2, GpuLayerCount = 0,
            FlashAttention = false, TypeK = GGMLType.GGML_TYPE_F32, TypeV = GGMLType.GGML_TYPE_F32,
        };
        _weights = LLamaWeights.LoadFromFile(_p);
        if (loraGguf != null) _lora = _weights.NativeHandle.LoadLoraFromFile(loraGguf);
    }

    public int[] Tokenize(string text) =>
        _weights.Tokenize(text, add_bos: true, special: true, System.Text.Encoding.UTF8).Select(t => (int)t).ToArray();

    private LLamaContext Context()
    {
        var ctx = _weights.CreateContext(_p);
        if (_lora is { } l) ctx.NativeHandle.SetLoraAdapters([(l, 1f)]);
        return ctx;
    }

    /// <summary>Logits [T][V] of every position of one sequence.</summary>
    public float[][] Logits(int[] ids)
    {
        using var ctx = Context();
        var batch = new LLamaBatch();
        for (int t = 0; t < ids.Length; t++) batch.Add((LLamaToken)ids[t], t, LLamaSeqId.Zero, true);
        Assert.Equal(DecodeResult.Ok, ctx.Decode(batch));
        return Enumerable.Range(0, ids.Length).Select(i => ctx.NativeHandle.GetLogitsIth(i).ToArray()).ToArray();
    }

    public int[] Greedy(int[] prompt, int n)
    {
        using var ctx = Context();
        var batch = new LLamaBatch();
        for (int t = 0; t < prompt.Length; t++) batch.Add((LLamaToken)prompt[t], t, LLamaSeqId.Zero, t == prompt.Length - 1);
        Assert.Equal(DecodeResult.Ok, ctx.Decode(batch));
        var outIds = new List<int>();
        for (int i = 0; i < n; i++)
        {
            int next = LogitsSampler.ArgMax(ctx.NativeHandle.GetLogitsIth(batch.TokenCount - 1));
            outIds.Add(next);
            batch.Clear();
            batch.Add((LLamaToken)next, prompt.Length + i, LLamaSeqId.Zero, true);
            Assert.Equal(DecodeResult.Ok, ctx.Decode(batch));
        }
        return [.. outIds];
    }

    public void Dispose()
    {
        _weights.Dispose();
    }
}

public class GgufExportTests(ITestOutputHelper output)
{
    public static IEnumerable<object[]> Golden() =>
        [["llama_gqa_f32"], ["llama3_rope_f32"], ["qwen2_tied_f32"], ["mistral_sw_f32"], ["llama_gqa_bf16"]];

    /// <summary>A copy of a golden checkpoint with a 96-token byte-level tokenizer.json so llama.cpp can load it.</summary>
    private static string WithSyntheticTokenizer(string name, TempDir tmp)
    {
        string src = GoldenFixture.Dir(name), dir = tmp[name];
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        // GPT-2's byte-to-unicode map for bytes 0..95: bytes 0..32 are not printable and map to U+0100 + n.
        var vocab = new Dictionary<string, int>();
        for (int b = 0; b < 96; b++) vocab[b <= 32 ? ((char)(256 + b)).ToString() : ((char)b).ToString()] = b;
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["version"] = "1.0", ["added_tokens"] = Array.Empty<object>(), ["normalizer"] = null,
            ["pre_tokenizer"] = new { type = "ByteLevel", add_prefix_space = false, trim_offsets = true, use_regex = true },
            ["post_processor"] = null, ["decoder"] = new { type = "ByteLevel" },
            ["model"] = new Dictionary<string, object?> { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = Array.Empty<string>() },
        }));
        return dir;
    }

    private static (double MaxAbs, double MaxRef) Compare(float[][] cpp, float[] ours, int V, int positions)
    {
        double maxAbs = 0, maxRef = 0;
        for (int t = 0; t < positions; t++)
            for (int v = 0; v < V; v++)
            {
                maxAbs = Math.Max(maxAbs, Math.Abs(cpp[t][v] - ours[t * V + v]));
                maxRef = Math.Max(maxRef, Math.Abs(ours[t * V + v]));
            }
        return (maxAbs, maxRef);
    }

    private static string Export(string model, string outFile, string dtype, string? adapter = null, bool adapterOnly = false)
    {
        var args = new List<string> { "export", "gguf", "--model", model, "--out", outFile, "--dtype", dtype };
        if (adapter != null) args.AddRange(["--adapter", adapter]);
        if (adapterOnly) args.Add("--adapter-only");
        var (rc, _, e) = TestConsole.Run([.. args]);
        Assert.True(rc == 0, e);
        return e.ToString();
    }

    // q8_0: each weight is off by at most half a quantisation step (max|block| / 254), and llama.cpp also quantises
    // the activations to q8_0 for its q8_0 matmuls; on these random tiny models (logits up to ±13) that moves
    // logits by up to ~6 % of their range. Documented tolerance: 10 % of the largest |logit|; greedy agreement is
    // measured and must be at least 50 % of tokens (figures in docs/PERFORMANCE.md, "GGUF export").
    private const double Q8RelTol = 0.10;

    [Theory]
    [MemberData(nameof(Golden))]
    public void Golden_checkpoints_run_in_llama_cpp_with_our_numbers(string name)
    {
        using var tmp = new TempDir();
        string dir = WithSyntheticTokenizer(name, tmp);
        var g = GoldenFixture.Load(Path.Combine(dir, "expected.json"));
        using var model = InferenceModel.Load(dir);
        int V = model.Config.VocabSize;
        // Mistral's sliding window is not in llama.cpp's llama arch: compare positions inside the window only.
        int window = model.Config.SlidingWindow ?? int.MaxValue;
        string log = Export(dir, tmp["m.f32.gguf"], "f32");
        if (name.StartsWith("mistral")) Assert.Contains("sliding_window", log);
        Export(dir, tmp["m.q8.gguf"], "q8_0");
        using (var cpp = new LlamaCpp(tmp["m.f32.gguf"]))
        {
            foreach (var s in g.Sequences)
            {
                var ours = Scorer.Score(model, [s.Ids], keepLogits: true)[0].Logits!;
                var (maxAbs, _) = Compare(cpp.Logits(s.Ids), ours, V, Math.Min(s.Ids.Length, window));
                Assert.True(maxAbs <= 1e-3, $"{name} f32: llama.cpp logits differ by {maxAbs}");
            }
            if (window == int.MaxValue)
                foreach (var gr in g.Greedy)
                {
                    int n = Math.Min(32, model.Config.MaxPositionEmbeddings - gr.PromptIds.Length);
                    var ours = Generator.Generate(model, [gr.PromptIds], new GenerationOptions { MaxNewTokens = n })[0].GeneratedIds;
                    Assert.Equal(ours, cpp.Greedy(gr.PromptIds, n));
                }
        }
        using (var cpp = new LlamaCpp(tmp["m.q8.gguf"]))
        {
            double worst = 0;
            foreach (var s in g.Sequences)
            {
                var ours = Scorer.Score(model, [s.Ids], keepLogits: true)[0].Logits!;
                var (maxAbs, maxRef) = Compare(cpp.Logits(s.Ids), ours, V, Math.Min(s.Ids.Length, window));
                Assert.True(maxAbs <= Q8RelTol * maxRef, $"{name} q8_0: llama.cpp logits differ by {maxAbs} (largest |logit| {maxRef})");
                Assert.True(maxAbs > 0, "q8_0 file is not quantised");
                worst = Math.Max(worst, maxAbs / maxRef);
            }
            // Greedy agreement, two ways: free-running tokens equal up to the first difference, and teacher-forced
            // (llama.cpp's argmax at every step of our greedy continuation equals our token).
            int same = 0, forced = 0, total = 0;
            if (window == int.MaxValue)
                foreach (var gr in g.Greedy)
                {
                    int n = Math.Min(32, model.Config.MaxPositionEmbeddings - gr.PromptIds.Length);
                    var ours = Generator.Generate(model, [gr.PromptIds], new GenerationOptions { MaxNewTokens = n })[0].GeneratedIds;
                    same += ours.Zip(cpp.Greedy(gr.PromptIds, n)).TakeWhile(p => p.First == p.Second).Count();
                    var logits = cpp.Logits([.. gr.PromptIds, .. ours[..^1]]);
                    for (int i = 0; i < n; i++) forced += LogitsSampler.ArgMax(logits[gr.PromptIds.Length - 1 + i]) == ours[i] ? 1 : 0;
                    total += n;
                }
            output.WriteLine($"GGUF q8_0 {name}: max |Δlogit| / max |logit| = {worst:P2}; greedy: {same}/{total} tokens equal before the first difference, {forced}/{total} teacher-forced");
            if (total > 0) Assert.True(forced >= 0.75 * total, $"{name} q8_0: teacher-forced greedy agrees on {forced}/{total} tokens");
        }
    }

    [Fact]
    public void Lora_merged_and_as_gguf_adapter_match_our_adapter()
    {
        using var tmp = new TempDir();
        string dir = WithSyntheticTokenizer("llama_gqa_f32", tmp);
        string lora = Path.Combine(GoldenFixture.Dir("llama_gqa_f32"), "lora");
        var g = GoldenFixture.Load(Path.Combine(lora, "expected.json"));
        using var model = InferenceModel.Load(dir);
        model.ApplyAdapter(LoraAdapterFile.Load(lora));
        int V = model.Config.VocabSize;
        Export(dir, tmp["merged.gguf"], "f32", lora);
        Export(dir, tmp["merged.q8.gguf"], "q8_0", lora);
        Export(dir, tmp["base.gguf"], "f32");
        Export(dir, tmp["lora.gguf"], "f32", lora, adapterOnly: true);
        foreach (var (file, adapterFile, tol) in new[] { (tmp["merged.gguf"], (string?)null, 1e-3), (tmp["base.gguf"], tmp["lora.gguf"], 1e-3), (tmp["merged.q8.gguf"], null, -1.0) })
        {
            using var cpp = new LlamaCpp(file, adapterFile);
            foreach (var s in g.Sequences)
            {
                // The PyTorch golden of the adapted model checks ours; llama.cpp is checked against ours.
                var ours = Scorer.Score(model, [s.Ids], keepLogits: true)[0].Logits!;
                GoldenFixture.AssertClose(s.Logits, ours, 1e-4, "adapted model");
                var (maxAbs, maxRef) = Compare(cpp.Logits(s.Ids), ours, V, s.Ids.Length);
                Assert.True(maxAbs <= (tol > 0 ? tol : Q8RelTol * maxRef), $"{Path.GetFileName(file)} + {adapterFile}: logits differ by {maxAbs}");
            }
            if (tol > 0)
                foreach (var gr in g.Greedy)
                    Assert.Equal(Generator.Generate(model, [gr.PromptIds], new GenerationOptions { MaxNewTokens = 32 })[0].GeneratedIds, cpp.Greedy(gr.PromptIds, 32));
        }
    }

    public static readonly string[] Texts =
    [
        "Hello world", "hello world", " Hello", "  two leading spaces", "trailing space ", "Hello,world!", "What's up? I'm fine; you'll see.",
        "DON'T SHOUT", "numbers 1 12 123 1234 12345 3.14159 -42 1e10", "2024-12-07T15:00:00Z", "tabs\tand\ttabs", "new\nlines\n\nand\r\nCRLF",
        "multiple     spaces", "emoji 🙂🚀 and ❤️", "café naïve résumé", "中文字符测试", "日本語のテキスト", "한국어 텍스트", "Привет, мир!", "Ελληνικά",
        "עברית", "العربية", "हिन्दी", "mixed English и русский", "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; i++) { sum += a[i]; }",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}", "<html><body>Hi</body></html>", "https://example.com/path?q=1&r=2#frag", "user@example.org",
        "C:\\Windows\\System32", "$100 & 50% off!!!", "a", "A", ".", "...", "!!!???", "ﬁ ligature and ＦＵＬＬＷＩＤＴＨ", "zero\u200bwidth", "The quick brown fox jumps over the lazy dog.",
        "supercalifragilisticexpialidocious", "antidisestablishmentarianism", "   ", "\n", "x\ny", "Ünïcödé Äpfel Öl Übermut", "¿Qué tal? ¡Bien!",
        "1+1=2, 2*3=6, 10/2=5", "snake_case and camelCase and PascalCase", "The end.",
    ];

    [Theory]
    [InlineData("llama2", "llama")]
    [InlineData("llama3", "llama")]
    [InlineData("qwen2.5", "qwen2")]
    public void Real_tokenizers_tokenize_like_itune_tokenize_and_decode_like_us(string tokenizer, string modelType)
    {
        Assert.Equal(50, Texts.Length);
        using var tmp = new TempDir();
        string dir = tmp["model"];
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(TestPaths.SharedTestData("tokenizers", tokenizer)).Where(f => !f.EndsWith(".md")))
            File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var tok = TokenizerLoader.Load(dir);
        var config = new LlamaConfig
        {
            ModelType = modelType, VocabSize = tok.VocabSize, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 1,
            NumAttentionHeads = 4, NumKeyValueHeads = 2, MaxPositionEmbeddings = 128, TieWordEmbeddings = modelType == "qwen2",
            QkvBias = modelType == "qwen2", BosTokenId = tok.BosId, EosTokenIds = tok.EosId is { } e ? [e] : [],
        };
        RandomCheckpoint.Create(config, dir, 3, DType.F32);
        Export(dir, tmp["t.gguf"], "f32");

        // `itune tokenize --add-special-tokens` over the 50 strings, in-process.
        File.WriteAllLines(tmp["in.jsonl"], Texts.Select(t => JsonSerializer.Serialize(new { text = t })));
        Assert.Equal(0, TestConsole.Run("tokenize", "--tokenizer", dir, "--add-special-tokens", "--input", tmp["in.jsonl"], "--output", tmp["out.jsonl"]).Rc);
        var expected = File.ReadAllLines(tmp["out.jsonl"]).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray()).ToList();

        using var cpp = new LlamaCpp(tmp["t.gguf"]);
        var mismatches = Texts.Select((t, i) => (t, i)).Where(x => !cpp.Tokenize(x.t).SequenceEqual(expected[x.i]))
            .Select(x => $"\"{x.t}\": itune [{string.Join(",", expected[x.i])}] llama.cpp [{string.Join(",", cpp.Tokenize(x.t))}]").ToList();
        Assert.True(mismatches.Count == 0, $"{mismatches.Count}/50 differ:\n" + string.Join("\n", mismatches.Take(5)));

        // The model itself: logits of a real prompt and greedy tokens, through the real tokenizer.
        using var model = InferenceModel.Load(dir);
        var ids = expected[^11];
        var ours = Scorer.Score(model, [ids], keepLogits: true)[0].Logits!;
        var (maxAbs, _) = Compare(cpp.Logits(ids), ours, config.VocabSize, ids.Length);
        Assert.True(maxAbs <= 1e-3, $"{tokenizer}: logits differ by {maxAbs}");
        Assert.Equal(Generator.Generate(model, [ids], new GenerationOptions { MaxNewTokens = 32 })[0].GeneratedIds, cpp.Greedy(ids, 32));
    }

    [Fact]
    public void Q8_0_blocks_follow_ggml_layout_and_bad_input_is_named()
    {
        var x = Enumerable.Range(0, 64).Select(i => (float)Math.Sin(i) * (i < 32 ? 1f : 0.01f)).ToArray();
        var b = new byte[InstructTune.Engine.Quantization.Q8_0.ByteCount(64)];
        InstructTune.Engine.Quantization.Q8_0.Quantize(x, b);
        Assert.Equal(68, b.Length);
        // Block 0: scale = max|x| / 127 as half, then round(x / scale) as int8 (the largest is ±127).
        float amax = x.Take(32).Max(Math.Abs);
        Assert.Equal((Half)(amax / 127f), System.Buffers.Binary.BinaryPrimitives.ReadHalfLittleEndian(b));
        Assert.Contains(b.Skip(2).Take(32), q => (sbyte)q is 127 or -127);
        var back = new float[64];
        InstructTune.Engine.Quantization.Q8_0.Dequantize(b, back);
        for (int i = 0; i < 64; i++) Assert.True(Math.Abs(back[i] - x[i]) <= (i < 32 ? amax : 0.01f) / 127f * 0.51 + 1e-6, $"value {i}");
        Assert.Throws<ArgumentException>(() => InstructTune.Engine.Quantization.Q8_0.ByteCount(33));

        using var tmp = new TempDir();
        var e = Assert.ThrowsAny<Exception>(() => GgufExporter.Export(new GgufExportOptions(GoldenFixture.Dir("llama_gqa_f32"), tmp["x.gguf"], GgufDType.F32)));
        Assert.Contains("tokenizer", e.Message);
        Assert.False(File.Exists(tmp["x.gguf"]));
        Assert.Throws<ArgumentException>(() => GgufExporter.ParseDType("q4"));
    }
}
