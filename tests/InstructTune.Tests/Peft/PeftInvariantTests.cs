using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Peft;
using InstructTune.Generation;
using InstructTune.Peft.Hint;
using InstructTune.Peft.Ia3;
using InstructTune.Peft.Iapt;
using InstructTune.Peft.Iasft;
using InstructTune.Peft.Ipeft;
using InstructTune.Peft.Lora;
using InstructTune.Peft.PrefixTuning;
using InstructTune.Peft.PromptTuning;
using static InstructTune.Tests.Peft.LoraInvariantTests;

namespace InstructTune.Tests.Peft;

/// <summary>
/// The PEFT invariants (STYLE.md item 8) over method × tiny model for the methods beside plain LoRA (which
/// LoraInvariantTests covers): identity at init, disabling restores the base, merged equals unmerged, a step changes
/// only the method's parameters, save → load reproduces logits exactly in PEFT's layout, and the inference path
/// (KV cache, one token at a time) computes what the training forward computes.
/// </summary>
public class PeftInvariantTests
{
    public static TheoryData<string, string> Table()
    {
        var data = new TheoryData<string, string>();
        foreach (var method in new[] { "dora", "ia3", "iasft" })
            foreach (var model in new[] { "llama-gqa", "qwen2-tied-bias" })
                data.Add(method, model);
        return data;
    }

    /// <summary>Every method (the mergeable ones start as identity; prompt/prefix tuning start random).</summary>
    public static TheoryData<string, string> AllTable()
    {
        var data = new TheoryData<string, string>();
        foreach (var method in new[] { "dora", "ia3", "iasft", "ipeft", "iapt", "hint", "prompt", "prefix", "prefix_proj" })
            foreach (var model in new[] { "llama-gqa", "qwen2-tied-bias" })
                data.Add(method, model);
        return data;
    }

    private static readonly PromptTuningConfig PromptConfig = new() { NumVirtualTokens = 4, Init = PromptInit.SampleVocab };
    private static PrefixTuningConfig PrefixConfig(string method) => new() { NumVirtualTokens = 3, PrefixProjection = method == "prefix_proj", EncoderHiddenSize = 10 };

    private static void Inject(LlamaModel model, string method)
    {
        switch (method)
        {
            case "dora": LoraInjector.Inject(model, new LoraConfig { Rank = 4, Alpha = 8, UseDora = true }, seed: 1); break;
            case "ia3": Ia3Injector.Inject(model, new Ia3Config()); break;
            case "iasft": InjectIasft(model, IasftConfig); break;
            case "ipeft": IpeftInjector.Inject(model, IpeftConfig, 1); break;
            case "iapt": IaptInjector.Inject(model, IaptConfig, 1); break;
            case "hint": HintInjector.Inject(model, HintTests.Config, 1); break;
            case "prompt": PromptTuningInjector.Inject(model, PromptConfig, 1); break;
            default: PrefixTuningInjector.Inject(model, PrefixConfig(method), 1); break;
        }
    }

    internal static readonly IpeftConfig IpeftConfig = new() { Rank = 4, Alpha = 8 };
    internal static readonly IaptConfig IaptConfig = new() { NumVirtualTokens = 3, Bottleneck = 5 };

    /// <summary>The shared batch; for iPEFT and IAPT with instruction segments, so their weights see an instruction.</summary>
    internal static LlamaBatch BatchFor(string method) => method is not ("ipeft" or "iapt" or "hint") ? Batch()
        : Batch() with { Segments = new IntTensor([0, 1, 1, 1, 2, 3, 3, 3, 3, 1, 1, 2, 1, 3, 3, 3, 3, 3], 2, 9) };

    internal static readonly IasftConfig IasftConfig = new() { Fraction = 0.05, FisherBatches = 1 };

    /// <summary>IaSFT as the recipe injects it: Fisher of the batch's response loss at the base, top 5 % per tensor.</summary>
    internal static IReadOnlyList<(string Name, SparseDeltaLinear Layer)> InjectIasft(LlamaModel model, IasftConfig config)
    {
        var targets = IasftSelection.Targets(model, config);
        var fisher = IasftSelection.EstimateFisher(model, targets, config.FisherBatches, _ =>
        {
            using var tape = Tape.Record();
            tape.Backward(model.Forward(Batch()).Loss!);
        });
        var masks = IasftSelection.Select(fisher, config.Fraction, config.Selection);
        return IasftInjector.Inject(model, targets.Select((t, i) => (t.Name, masks[i])).ToList());
    }

    private static string Marker(string method) => method switch
    {
        "dora" => ".lora_", "ia3" => ".ia3_l", "iasft" => ".iasft_values", "ipeft" => "ipeft_", "iapt" => "iapt_generator.", "hint" => "hint_", "prompt" => "prompt_encoder.", _ => "prefix_encoder.",
    };

    /// <summary>Moves every adapter parameter away from its identity init.</summary>
    private static void Perturb(LlamaModel model)
    {
        var rng = new Rng(99);
        foreach (var (name, p) in model.NamedParameters().Where(p => !p.Parameter.Frozen))
        {
            var noise = new float[p.Length];
            bool zeroInit = name.Contains("lora_B") || name.Contains("iasft_values") || name.Contains("ipeft_gate") || name.Contains("iapt_generator.gate_") || name.Contains("_gate_") || name.Contains("hint_hypernetwork.adapter_");   // additive deltas that start at 0
            rng.Normal(noise, 0, name.Contains("lora_B") ? 0.05f : name.Contains("_encoder.") ? 0.5f : 0.2f);
            var v = p.ToArray();
            for (int i = 0; i < v.Length; i++) v[i] = zeroInit ? noise[i] : v[i] * (1 + noise[i]);
            p.Load(v);
        }
    }

    private static string Save(LlamaModel model, string method)
    {
        var dir = Directory.CreateTempSubdirectory("adapter").FullName;
        switch (method)
        {
            case "dora": LoraAdapterIO.Save(model, new LoraConfig { Rank = 4, Alpha = 8, UseDora = true }, dir); break;
            case "ia3": Ia3AdapterIO.Save(model, new Ia3Config(), dir); break;
            case "iasft": IasftAdapterIO.Save(model, IasftConfig, dir); break;
            case "ipeft": IpeftAdapterIO.Save(model, IpeftConfig, dir); break;
            case "iapt": IaptAdapterIO.Save(model, IaptConfig, dir); break;
            case "hint": HintInjector.Save(model, dir); break;
            case "prompt": PromptTuningAdapterIO.Save(model, PromptConfig, dir); break;
            default: PrefixTuningAdapterIO.Save(model, PrefixConfig(method), dir); break;
        }
        return dir;
    }

    private static float MaxDiff(float[] a, float[] b) => a.Zip(b).Max(p => Math.Abs(p.First - p.Second));

    [Theory, MemberData(nameof(AllTable))]
    public void OutputIsUnchangedAtInitAndWhenDisabled(string method, string kind)
    {
        var expected = Logits(TinyModel(kind));
        var model = TinyModel(kind);
        Inject(model, method);
        if (method is "dora" or "ia3" or "iasft" or "ipeft" or "iapt" or "hint") AssertClose(expected, Logits(model), 1e-5f);   // identity at init
        Perturb(model);
        Assert.True(MaxDiff(expected, Logits(model)) > 1e-3f, "a trained adapter must change the output");
        Assert.True(AdapterSwitch.SetEnabled(model, false) > 0);
        AssertClose(expected, Logits(model), 1e-6f);
        AdapterSwitch.SetEnabled(model, true);
        Assert.True(MaxDiff(expected, Logits(model)) > 1e-3f);
    }

    [Theory, MemberData(nameof(Table))]
    public void MergedEqualsUnmerged(string method, string kind)
    {
        var model = TinyModel(kind);
        Inject(model, method);
        Perturb(model);
        var unmerged = Logits(model);
        if (method == "dora") LoraInjector.Merge(model); else if (method == "ia3") Ia3Injector.Merge(model); else IasftInjector.Merge(model);
        AssertClose(unmerged, Logits(model), 1e-5f);
        if (method == "dora") LoraInjector.Unmerge(model); else if (method == "ia3") Ia3Injector.Unmerge(model); else IasftInjector.Unmerge(model);
        AssertClose(unmerged, Logits(model), 1e-5f);
        PeftRegistry.MergeAndUnload(model);
        Assert.DoesNotContain(model.NamedParameters(), p => p.Name.Contains(".lora_") || p.Name.Contains(".ia3_") || p.Name.Contains(".iasft_"));
        AssertClose(unmerged, Logits(model), 1e-5f);
    }

    [Theory, MemberData(nameof(AllTable))]
    public void AStepChangesOnlyTheMethodsParameters(string method, string kind)
    {
        var model = TinyModel(kind);
        Inject(model, method);
        string marker = Marker(method);
        var before = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.ToArray());
        Assert.All(model.NamedParameters().Where(p => !p.Parameter.Frozen), p => Assert.Contains(marker, p.Name));
        var optimizer = new AdamW(model.Parameters().Where(p => !p.Frozen).ToList(), lr: 1e-2f, weightDecay: 0f);
        for (int step = 0; step < 2; step++)
        {
            using (var tape = Tape.Record()) tape.Backward(model.Forward(BatchFor(method)).Loss!);
            optimizer.Step();
            model.ZeroGrad();
        }
        foreach (var (name, p) in model.NamedParameters())
        {
            bool changed = !before.TryGetValue(name, out var was) || !was.AsSpan().SequenceEqual(p.ToArray());
            Assert.True(changed == name.Contains(marker), $"{name}: changed={changed}");
        }
    }

    [Theory, MemberData(nameof(AllTable))]
    public void SaveThenLoadReproducesLogitsExactlyInPeftLayout(string method, string kind)
    {
        var model = TinyModel(kind);
        Inject(model, method);
        Perturb(model);
        var expected = Logits(model);
        var dir = Save(model, method);
        using (var st = SafetensorsFile.Open(Path.Combine(dir, "adapter_model.safetensors")))
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json"))))
        {
            var root = json.RootElement;
            if (method == "dora")
            {
                Assert.Equal("LORA", root.GetProperty("peft_type").GetString());
                Assert.True(root.GetProperty("use_dora").GetBoolean());
                Assert.Equal([32L], st.Info("base_model.model.model.layers.1.self_attn.q_proj.lora_magnitude_vector").Shape);
                Assert.Equal(2 * 7 * 3, st.Tensors.Count);   // 2 layers × 7 projections × (A, B, magnitude)
            }
            else if (method is "prompt" or "prefix" or "prefix_proj")
            {
                bool prompt = method == "prompt";
                Assert.Equal(prompt ? "PROMPT_TUNING" : "PREFIX_TUNING", root.GetProperty("peft_type").GetString());
                Assert.Equal(prompt ? 4 : 3, root.GetProperty("num_virtual_tokens").GetInt32());
                Assert.Equal(1, root.GetProperty("num_transformer_submodules").GetInt32());
                int kvDim = (kind == "llama-gqa" ? 2 : 1) * 8;
                Assert.Equal(prompt ? 32 : kvDim, root.GetProperty("token_dim").GetInt32());
                if (!prompt) Assert.Equal(method == "prefix_proj", root.GetProperty("prefix_projection").GetBoolean());
                else Assert.Equal("SAMPLE_VOCAB", root.GetProperty("prompt_tuning_init").GetString());
                Assert.Equal(prompt ? [4L, 32L] : [3L, 2L * 2 * kvDim], st.Info("prompt_embeddings").Shape);
                Assert.Single(st.Tensors);
            }
            else if (method == "ipeft")
            {
                Assert.Equal("IPEFT", root.GetProperty("peft_type").GetString());
                Assert.Equal(4, root.GetProperty("r").GetInt32());
                Assert.Equal(["q_proj", "v_proj"], root.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()));
                Assert.Equal([4L, 32L], st.Info("base_model.model.model.layers.1.self_attn.q_proj.ipeft_A.weight").Shape);
                Assert.Equal([1L, 32L], st.Info("base_model.model.ipeft_gate.weight_1").Shape);
                Assert.Equal(2 * 2 * 2 + 2 * 2, st.Tensors.Count);   // 2 layers × 2 targets × (A, B) + 2 layers × (w, b)
            }
            else if (method == "iapt")
            {
                Assert.Equal("IAPT", root.GetProperty("peft_type").GetString());
                Assert.Equal(3, root.GetProperty("num_virtual_tokens").GetInt32());
                Assert.Equal(5, root.GetProperty("bottleneck").GetInt32());
                Assert.Equal("gelu", root.GetProperty("activation").GetString());
                int kvDim = (kind == "llama-gqa" ? 2 : 1) * 8;
                Assert.Equal([5L, 32L], st.Info("base_model.model.iapt_generator.down_1.weight").Shape);
                Assert.Equal([3L * 2 * kvDim, 5L], st.Info("base_model.model.iapt_generator.up_0.weight").Shape);
                Assert.Equal([32L], st.Info("base_model.model.iapt_generator.gate_1").Shape);
                Assert.Equal(2 * 5, st.Tensors.Count);   // 2 layers × (down w, b, up w, b, gate)
            }
            else if (method == "hint")
            {
                Assert.Equal("HINT", root.GetProperty("peft_type").GetString());
                Assert.Equal(1, root.GetProperty("encoder_layers").GetInt32());
                Assert.Equal(4, root.GetProperty("r").GetInt32());
                Assert.Equal(["q_proj", "v_proj"], root.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()));
                int kvDim = (kind == "llama-gqa" ? 2 : 1) * 8;
                Assert.Equal([4L, 32L], st.Info("base_model.model.model.layers.1.self_attn.q_proj.hint_A.weight").Shape);
                Assert.Equal([(long)kvDim, 4L], st.Info("base_model.model.model.layers.0.self_attn.v_proj.hint_B.weight").Shape);
                Assert.Equal("generated_low_rank", root.GetProperty("adapter_form").GetString());
                Assert.Equal([16L, 32L], st.Info("base_model.model.hint_hypernetwork.adapter_w_1").Shape);   // r² × hidden
                Assert.Equal([3L * 2 * kvDim, 5L], st.Info("base_model.model.hint_hypernetwork.prompt_up_0.weight").Shape);
                Assert.Equal([32L], st.Info("base_model.model.hint_hypernetwork.prompt_gate_1").Shape);
                Assert.Equal(2 * 2 * 2 + 2 * 7, st.Tensors.Count);   // 2 layers × 2 targets × (A, B) + 2 layers × 7 hypernetwork tensors
            }
            else if (method == "iasft")
            {
                Assert.Equal("IASFT", root.GetProperty("peft_type").GetString());
                Assert.Matches("^crc32c:[0-9a-f]{8}$", root.GetProperty("base_checksum").GetString());
                var q = st.Info("base_model.model.model.layers.0.self_attn.q_proj.weight.iasft_index");
                Assert.Equal(DType.I64, q.DType);
                Assert.Equal([(long)IasftSelection.K(0.05, 32 * 32)], q.Shape);
                Assert.Equal(DType.F32, st.Info("base_model.model.model.layers.0.self_attn.q_proj.weight.iasft_values").DType);
                Assert.Equal(32, root.GetProperty("weight_shapes").GetProperty("model.layers.0.self_attn.q_proj")[0].GetInt32());
                Assert.Equal(2 * 7 * 2, st.Tensors.Count);   // 2 layers × 7 projections × (index, values)
            }
            else
            {
                Assert.Equal("IA3", root.GetProperty("peft_type").GetString());
                Assert.Equal(["down_proj", "k_proj", "v_proj"], root.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()));
                Assert.Equal(["down_proj"], root.GetProperty("feedforward_modules").EnumerateArray().Select(e => e.GetString()));
                int kv = kind == "llama-gqa" ? 16 : 8, ffn = kind == "llama-gqa" ? 48 : 40;
                Assert.Equal([(long)kv, 1L], st.Info("base_model.model.model.layers.0.self_attn.k_proj.ia3_l").Shape);
                Assert.Equal([1L, (long)ffn], st.Info("base_model.model.model.layers.1.mlp.down_proj.ia3_l").Shape);
                Assert.Equal(2 * 3, st.Tensors.Count);
            }
        }
        var reloaded = TinyModel(kind);
        PeftRegistry.LoadInto(reloaded, dir);
        Assert.Equal(expected, Logits(reloaded));
    }

    /// <summary>The inference path (score/generate/eval) with the saved adapter: decoding one token at a time over
    /// the KV cache, and the whole sequence in one uncached prefill, both give the training forward's logits.</summary>
    [Theory, MemberData(nameof(AllTable))]
    public void KvCacheDecodingEqualsTheUncachedForward(string method, string kind)
    {
        var baseDir = Directory.CreateTempSubdirectory("base").FullName;
        LlamaCheckpoint.Save(TinyModel(kind), baseDir);
        var model = TinyModel(kind);
        Inject(model, method);
        Perturb(model);
        var adapterDir = Save(model, method);
        var batch = Batch();
        int V = model.Config.VocabSize, T = batch.InputIds.Shape[1];
        var expected = Logits(model);   // (2, T, V); sequence 0 is used

        using var inference = InferenceModel.Load(baseDir);
        PeftRegistry.ApplyTo(inference, adapterDir);
        var ids = batch.InputIds.Data[..T];
        var prefill = inference.Forward([new SequenceChunk(inference.CreateCache(T), ids, AllLogits: true)]);
        AssertClose(expected[..(T * V)], prefill, 1e-4f);
        var cache = inference.CreateCache(T);
        for (int t = 0; t < T; t++)
        {
            var step = inference.Forward([new SequenceChunk(cache, [ids[t]])]);
            AssertClose(prefill[(t * V)..((t + 1) * V)], step, 1e-5f);
        }
    }

    /// <summary>
    /// HINT's inference path with instructions (the table row above runs without any): sequence 0 of each pair carries
    /// instruction tokens (segment 1) the training forward takes out; its logits at every other token equal the
    /// training forward's (prefill ≤ 1e-4), an instruction token's row carries the stripped sequence's state before it,
    /// decoding one token at a time over the KV cache equals the prefill (≤ 1e-5), greedy generation with the cache
    /// equals generation without it, and an instruction shared by two sequences is encoded once.
    /// </summary>
    [Theory, InlineData("llama-gqa"), InlineData("qwen2-tied-bias")]
    public void HintInferenceEqualsTheTrainingForwardWithInstructions(string kind)
    {
        var baseDir = Directory.CreateTempSubdirectory("base").FullName;
        LlamaCheckpoint.Save(TinyModel(kind), baseDir);
        var model = TinyModel(kind);
        Inject(model, "hint");
        Perturb(model);
        var adapterDir = Save(model, "hint");
        int[] ids = [7, 11, 12, 13, 40, 41, 42, 43, 44], other = [5, 21, 22, 23, 24, 50, 51, 52, 53];
        byte[] segs = [0, 1, 1, 1, 2, 3, 3, 3, 3], otherSegs = [0, 0, 1, 1, 1, 1, 2, 3, 3];
        int T = ids.Length, V = model.Config.VocabSize;
        float[] expected;
        using (Tape.Record(recordGrad: false))
            expected = model.Forward(new LlamaBatch(new IntTensor([.. ids, .. other], 2, T))
            {
                Segments = new IntTensor([.. segs.Select(x => (int)x), .. otherSegs.Select(x => (int)x)], 2, T),
            }).Logits!.ToArray();   // (2, T, V); instruction rows are 0

        using var inference = InferenceModel.Load(baseDir);
        PeftRegistry.ApplyTo(inference, adapterDir);
        Assert.True(inference.ReadsSegments);
        var prefill = inference.Forward([
            new SequenceChunk(inference.CreateCache(T), ids, AllLogits: true, Segments: segs),
            new SequenceChunk(inference.CreateCache(T), other, AllLogits: true, Segments: otherSegs)]);
        Assert.Equal(2, inference.HintEncodings);
        for (int b = 0; b < 2; b++)
        {
            var s = b == 0 ? segs : otherSegs;
            for (int t = 0, last = -1; t < T; t++)
            {
                var got = prefill.AsSpan((b * T + t) * V, V).ToArray();
                if (s[t] != 1) { AssertClose(expected[((b * T + t) * V)..((b * T + t + 1) * V)], got, 1e-4f); last = t; }
                else if (last >= 0) Assert.Equal(prefill.AsSpan((b * T + last) * V, V).ToArray(), got);   // the state before the instruction token
                else Assert.All(got, x => Assert.Equal(0f, x));                                         // nothing before it
            }
        }
        Assert.True(MaxDiff(expected[(4 * V)..(T * V)], Enumerable.Range(0, 1).SelectMany(_ =>
        {
            using var plain = InferenceModel.Load(baseDir);
            return plain.Forward([new SequenceChunk(plain.CreateCache(T), [7, 40, 41, 42, 43], AllLogits: true)]);
        }).ToArray()[(V)..]) > 1e-3f, "the generated adapters and prompts must change the output");

        // The prompt (instruction included) in one chunk, then one token at a time: the prefill's rows.
        var cache = inference.CreateCache(T);
        var step = inference.Forward([new SequenceChunk(cache, ids[..5], Segments: segs[..5])]);
        AssertClose(prefill[(4 * V)..(5 * V)], step, 1e-5f);
        for (int t = 5; t < T; t++)
        {
            step = inference.Forward([new SequenceChunk(cache, [ids[t]], Segments: [3])]);
            AssertClose(prefill[(t * V)..((t + 1) * V)], step, 1e-5f);
        }
        Assert.Equal(2, inference.HintEncodings);                 // the same instruction again: its encoding is reused
        var later = Assert.Throws<ArgumentException>(() => inference.Forward([new SequenceChunk(cache, [12], Segments: [1])]));
        Assert.Contains("first chunk", later.Message);
        var onlyInstruction = Assert.Throws<ArgumentException>(() => inference.Forward([new SequenceChunk(inference.CreateCache(T), [11, 12], Segments: [1, 1])]));
        Assert.Contains("template", onlyInstruction.Message);

        // Greedy generation over the KV cache equals generation that feeds the whole sequence every step.
        string Generate(bool useCache) => string.Join(",", Generator.Generate(inference, [ids[..5]],
            new GenerationOptions { MaxNewTokens = 6, Temperature = 0, UseCache = useCache }, [segs[..5]])[0].GeneratedIds);
        Assert.Equal(Generate(true), Generate(false));
    }

    /// <summary>IaSFT deltas check the base weights they were trained on; q8_0 has rounded those, so an IaSFT adapter on
    /// a q8_0 model (`--quantize q8_0` or a `convert --dtype q8_0` checkpoint) is refused naming the layer.</summary>
    [Fact]
    public void AnIasftAdapterOnQ8WeightsIsRefusedNamingTheLayer()
    {
        var config = new LlamaConfig { VocabSize = 97, HiddenSize = 32, IntermediateSize = 64, NumHiddenLayers = 1, NumAttentionHeads = 4, NumKeyValueHeads = 2, MaxPositionEmbeddings = 64 };
        LlamaModel Make() { var m = new LlamaModel(config); m.InitializeWeights(7, 0.1f); return m; }
        var baseDir = Directory.CreateTempSubdirectory("base").FullName;
        LlamaCheckpoint.Save(Make(), baseDir);
        var model = Make();
        InjectIasft(model, IasftConfig);
        var adapterDir = Save(model, "iasft");

        using (var f32 = InferenceModel.Load(baseDir)) PeftRegistry.ApplyTo(f32, adapterDir);   // the float32 base is accepted
        using var q8 = InferenceModel.Load(baseDir);
        q8.QuantizeQ8_0();
        var e = Assert.Throws<InvalidDataException>(() => PeftRegistry.ApplyTo(q8, adapterDir));
        Assert.Contains("q8_0", e.Message);
        Assert.Contains("model.layers.0.", e.Message);
    }

    [Fact]
    public void AnAdapterOfAnUnsupportedTypeIsRefusedNamingIt()
    {
        var dir = Directory.CreateTempSubdirectory("adapter").FullName;
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), """{"peft_type": "LOHA", "r": 4}""");
        var e = Assert.Throws<InvalidDataException>(() => PeftRegistry.LoadInto(TinyModel("llama-gqa"), dir));
        Assert.Contains("LOHA", e.Message);
        Assert.Contains("not supported", e.Message);
    }

    [Theory, InlineData("prompt"), InlineData("prefix")]
    public void VirtualTokensBeyondThePositionBudgetAreRefused(string method)
    {
        var model = TinyModel("llama-gqa");   // max_position_embeddings 64
        var e = Assert.Throws<ArgumentException>(() =>
        {
            if (method == "prompt") PromptTuningInjector.Inject(model, new PromptTuningConfig { NumVirtualTokens = 64 }, 1);
            else PrefixTuningInjector.Inject(model, new PrefixTuningConfig { NumVirtualTokens = 70 }, 1);
        });
        Assert.Contains("num_virtual_tokens", e.Message);
        Assert.Contains("max_position_embeddings 64", e.Message);
    }

    [Fact]
    public void PromptAndPrefixAdaptersAreNotMerged()
    {
        var model = TinyModel("llama-gqa");
        PromptTuningInjector.Inject(model, PromptConfig, 1);
        var e = Assert.Throws<InvalidDataException>(() => PeftRegistry.MergeAndUnload(model));
        Assert.Contains("cannot be merged", e.Message);
    }

    [Fact]
    public void TargetModulesThatDoNotExistAreRefusedNamingThem()
    {
        var e = Assert.Throws<ArgumentException>(() => Ia3Injector.Inject(TinyModel("llama-gqa"), new Ia3Config { TargetModules = ["kk_proj"], FeedforwardModules = [] }));
        Assert.Contains("kk_proj", e.Message);
        e = Assert.Throws<ArgumentException>(() => Ia3Injector.Inject(TinyModel("llama-gqa"), new Ia3Config { TargetModules = ["k_proj"], FeedforwardModules = ["down_proj"] }));
        Assert.Contains("down_proj", e.Message);
        e = Assert.Throws<ArgumentException>(() => LoraInjector.Inject(TinyModel("llama-gqa"), new LoraConfig { UseDora = true, TargetModules = ["qq_proj"] }, 1));
        Assert.Contains("qq_proj", e.Message);
    }
}

/// <summary>DoRA files as other PEFT versions write them, and DoRA files that are incomplete.</summary>
public class DoraFileTests
{
    private static string SavedDora(out float[] expected)
    {
        var model = TinyModel("llama-gqa");
        LoraInjector.Inject(model, new LoraConfig { Rank = 4, Alpha = 8, UseDora = true, TargetModules = ["q_proj"] }, seed: 1);
        var rng = new Rng(5);
        foreach (var (_, l) in LoraInjector.Find(model)) { rng.Normal(l.B.Weight.Span, 0, 0.05f); rng.Normal(l.Magnitude!.Span, 1, 0.1f); }
        expected = Logits(model);
        var dir = Directory.CreateTempSubdirectory("dora").FullName;
        LoraAdapterIO.Save(model, new LoraConfig { Rank = 4, Alpha = 8, UseDora = true }, dir);
        return dir;
    }

    /// <summary>Rewrites the adapter's tensors through <paramref name="rename"/> (null drops a tensor).</summary>
    private static void Rewrite(string dir, Func<string, string?> rename)
    {
        var path = Path.Combine(dir, "adapter_model.safetensors");
        List<TensorToWrite> tensors;
        using (var f = SafetensorsFile.Open(path))
            tensors = f.Tensors.Keys.Select(k => (k, n: rename(k))).Where(x => x.n != null)
                .Select(x => TensorToWrite.FromF32(x.n!, DType.F32, f.Info(x.k).Shape.ToArray(), f.ReadF32(x.k))).ToList();
        SafetensorsWriter.Write(path, tensors);
    }

    [Fact]
    public void AMagnitudeSavedWithItsWeightSuffixLoads()
    {
        var dir = SavedDora(out var expected);
        Rewrite(dir, k => k.EndsWith(".lora_magnitude_vector") ? k + ".weight" : k);
        var model = TinyModel("llama-gqa");
        PeftRegistry.LoadInto(model, dir);
        Assert.Equal(expected, Logits(model));
    }

    [Fact]
    public void AMissingMagnitudeIsRefusedNamingTheModule()
    {
        var dir = SavedDora(out _);
        Rewrite(dir, k => k.Contains("layers.1.") && k.EndsWith(".lora_magnitude_vector") ? null : k);
        var e = Assert.Throws<InvalidDataException>(() => PeftRegistry.LoadInto(TinyModel("llama-gqa"), dir));
        Assert.Contains("model.layers.1.self_attn.q_proj", e.Message);
        Assert.Contains("lora_magnitude_vector", e.Message);
    }
}
