using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Peft.Lora;
using InstructTune.Peft.Qlora;

namespace InstructTune.Tests.Peft;

/// <summary>PEFT invariants over a method × tiny-model table (STYLE.md item 8).</summary>
public class LoraInvariantTests
{
    public static TheoryData<string, string> Table()
    {
        var data = new TheoryData<string, string>();
        foreach (var method in new[] { "lora", "rslora", "qlora" })
            foreach (var model in new[] { "llama-gqa", "qwen2-tied-bias" })
                data.Add(method, model);
        return data;
    }

    internal static LlamaModel TinyModel(string kind)
    {
        var config = kind == "llama-gqa"
            ? new LlamaConfig { VocabSize = 97, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2, MaxPositionEmbeddings = 64 }
            : new LlamaConfig { ModelType = "qwen2", VocabSize = 97, HiddenSize = 32, IntermediateSize = 40, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 1, QkvBias = true, TieWordEmbeddings = true, MaxPositionEmbeddings = 64 };
        var model = new LlamaModel(config);
        model.InitializeWeights(7, 0.1f);
        if (config.QkvBias)   // biases start at zero; give them values so a wrong bias path shows
            foreach (var (name, p) in model.NamedParameters().Where(p => p.Name.EndsWith(".bias")))
                new Rng(11).Normal(p.Span, 0, 0.1f);
        return model;
    }

    private static LoraConfig Config(string method) => new() { Rank = 4, Alpha = 8, UseRsLora = method == "rslora" };

    internal static LlamaBatch Batch()
    {
        var ids = new int[2 * 9];
        var rng = new Rng(3);
        for (int i = 0; i < ids.Length; i++) ids[i] = rng.NextInt(97);
        return new LlamaBatch(new IntTensor(ids, 2, 9)) { Labels = new IntTensor((int[])ids.Clone(), 2, 9) };
    }

    internal static float[] Logits(LlamaModel model)
    {
        using var tape = Tape.Record(recordGrad: false);
        return model.Forward(Batch()).Logits!.ToArray();
    }

    /// <summary>QLoRA's base is the NF4 round trip of the weights: the reference is the model with those weights.</summary>
    private static LlamaModel ReferenceBase(string method, string kind)
    {
        var model = TinyModel(kind);
        if (method != "qlora") return model;
        foreach (var (name, linear) in model.NamedModules().Where(m => m.Module is Engine.Modules.Linear && Config(method).Targets(m.Name)).ToList())
        {
            var l = (Engine.Modules.Linear)linear;
            l.Weight.Load(new Nf4Linear(l).Dequantize());
        }
        return model;
    }

    private static void RandomizeB(LlamaModel model)
    {
        var rng = new Rng(99);
        foreach (var (_, layer) in LoraInjector.Find(model)) rng.Normal(layer.B.Weight.Span, 0, 0.05f);
    }

    internal static void AssertClose(float[] expected, float[] actual, float tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        float worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        Assert.True(worst <= tol, $"max abs difference {worst} > {tol}");
    }

    [Theory, MemberData(nameof(Table))]
    public void OutputIsUnchangedAtInit(string method, string kind)
    {
        var expected = Logits(ReferenceBase(method, kind));
        var model = TinyModel(kind);
        LoraInjector.Inject(model, Config(method), seed: 1, quantizeBase: method == "qlora");
        AssertClose(expected, Logits(model), 1e-5f);
    }

    [Theory, MemberData(nameof(Table))]
    public void DisablingRestoresTheBase(string method, string kind)
    {
        var expected = Logits(ReferenceBase(method, kind));
        var model = TinyModel(kind);
        LoraInjector.Inject(model, Config(method), seed: 1, quantizeBase: method == "qlora");
        RandomizeB(model);
        var adapted = Logits(model);
        Assert.True(adapted.Zip(expected).Max(p => Math.Abs(p.First - p.Second)) > 1e-3f, "a non-zero B must change the output");
        LoraInjector.SetEnabled(model, false);
        AssertClose(expected, Logits(model), 1e-5f);
    }

    [Theory, MemberData(nameof(Table))]
    public void MergedEqualsUnmerged(string method, string kind)
    {
        var model = TinyModel(kind);
        LoraInjector.Inject(model, Config(method), seed: 1, quantizeBase: method == "qlora");
        RandomizeB(model);
        var unmerged = Logits(model);
        if (method == "qlora")
        {
            LoraInjector.MergeAndUnload(model);   // dequantise + merge into a plain float32 Linear
            AssertClose(unmerged, Logits(model), 1e-5f);
            return;
        }
        LoraInjector.Merge(model);
        AssertClose(unmerged, Logits(model), 1e-5f);
        LoraInjector.Unmerge(model);
        AssertClose(unmerged, Logits(model), 1e-5f);
    }

    [Theory, MemberData(nameof(Table))]
    public void AStepChangesOnlyAdapterParameters(string method, string kind)
    {
        var model = TinyModel(kind);
        LoraInjector.Inject(model, Config(method), seed: 1, quantizeBase: method == "qlora");
        var before = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.ToArray());
        var trainable = model.Parameters().Where(p => !p.Frozen).ToList();
        Assert.All(model.NamedParameters().Where(p => !p.Parameter.Frozen), p => Assert.Contains(".lora_", p.Name));
        var optimizer = new AdamW(trainable, lr: 1e-2f, weightDecay: 0f);
        for (int step = 0; step < 2; step++)   // two steps: B moves on the first, A on the second
        {
            using (var tape = Tape.Record()) tape.Backward(model.Forward(Batch()).Loss!);
            optimizer.Step();
            model.ZeroGrad();
        }
        foreach (var (name, p) in model.NamedParameters())
        {
            bool changed = !before[name].AsSpan().SequenceEqual(p.ToArray());
            Assert.True(changed == name.Contains(".lora_"), $"{name}: changed={changed}");
        }
    }

    [Theory, MemberData(nameof(Table))]
    public void SaveThenLoadReproducesLogitsExactlyInPeftLayout(string method, string kind)
    {
        var model = TinyModel(kind);
        var config = Config(method);
        LoraInjector.Inject(model, config, seed: 1, quantizeBase: method == "qlora");
        RandomizeB(model);
        var expected = Logits(model);
        var dir = Directory.CreateTempSubdirectory("adapter").FullName;
        LoraAdapterIO.Save(model, config, dir);

        using (var st = SafetensorsFile.Open(Path.Combine(dir, "adapter_model.safetensors")))
        {
            var a = st.Info("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
            var b = st.Info("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
            Assert.Equal([4L, 32L], a.Shape);
            Assert.Equal([32L, 4L], b.Shape);
            Assert.Equal(2 * 7 * 2, st.Tensors.Count);   // 2 layers × 7 projections × (A, B)
        }
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json"))))
        {
            var root = json.RootElement;
            Assert.Equal("LORA", root.GetProperty("peft_type").GetString());
            Assert.Equal("CAUSAL_LM", root.GetProperty("task_type").GetString());
            Assert.Equal(4, root.GetProperty("r").GetInt32());
            Assert.Equal(8.0, root.GetProperty("lora_alpha").GetDouble());
            Assert.Equal(method == "rslora", root.GetProperty("use_rslora").GetBoolean());
            Assert.Equal(7, root.GetProperty("target_modules").GetArrayLength());
        }

        var reloaded = TinyModel(kind);
        LoraAdapterIO.LoadInto(reloaded, dir, quantizeBase: method == "qlora");
        Assert.Equal(expected, Logits(reloaded));
    }

    [Fact]
    public void AnAdapterThatDoesNotFitIsRefusedNamingTheModule()
    {
        var small = TinyModel("llama-gqa");
        LoraInjector.Inject(small, Config("lora"), 1);
        var dir = Directory.CreateTempSubdirectory("adapter").FullName;
        LoraAdapterIO.Save(small, Config("lora"), dir);
        var other = new LlamaModel(new LlamaConfig { VocabSize = 97, HiddenSize = 48, IntermediateSize = 48, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2 });
        var error = Assert.Throws<InvalidDataException>(() => LoraAdapterIO.LoadInto(other, dir));
        Assert.Contains("model.layers.", error.Message);
        Assert.Contains("[48, 48]", error.Message);
    }

    [Fact]
    public void QloraFrozenWeightsTakeAtMostSixTenthsOfAByteEach()
    {
        var linear = new Engine.Modules.Linear(1024, 768);
        new Rng(5).Normal(linear.Weight.Span, 0, 0.02f);
        var q = new Nf4Linear(linear);
        double bytesPerParameter = (double)q.WeightBytes / linear.Weight.Length;
        Assert.True(bytesPerParameter <= 0.6, $"{bytesPerParameter:F4} bytes/parameter");
    }

    /// <summary>QLoRA must train exactly as LoRA does over a float32 base holding the NF4 round trip of the
    /// weights: same losses, same adapter after several AdamW steps with dropout. Any difference between the
    /// two training runs is then the quantised base's effect, not a difference in how the adapter is trained.</summary>
    [Theory, InlineData("llama-gqa"), InlineData("qwen2-tied-bias")]
    public void QloraTrainsAsLoraOverItsDequantisedBase(string kind)
    {
        var config = Config("lora") with { Dropout = 0.1 };
        var reference = ReferenceBase("qlora", kind);
        LoraInjector.Inject(reference, config, seed: 1);
        var quantized = TinyModel(kind);
        LoraInjector.Inject(quantized, config, seed: 1, quantizeBase: true);

        TrainAlike(reference, quantized, "LoRA over the round trip", "QLoRA");
    }

    /// <summary>Six AdamW steps of both models on the same batches: equal losses (1e-4 relative) at every step and
    /// equal LoRA matrices at the end.</summary>
    internal static void TrainAlike(LlamaModel reference, LlamaModel other, string referenceName, string otherName)
    {
        var optimizers = new[] { reference, other }
            .Select(m => new AdamW(m.Parameters().Where(p => !p.Frozen).ToList(), lr: 1e-2f, weightDecay: 0.01f)).ToArray();
        for (int step = 0; step < 6; step++)
        {
            var losses = new float[2];
            foreach (var (model, k) in new[] { (reference, 0), (other, 1) })
            {
                using (var tape = Tape.Record())
                {
                    var loss = model.Forward(Batch()).Loss!;
                    losses[k] = loss.ToArray()[0];
                    tape.Backward(loss);
                }
                optimizers[k].Step();
                model.ZeroGrad();
            }
            Assert.True(Math.Abs(losses[0] - losses[1]) <= 1e-4f * Math.Abs(losses[0]), $"step {step}: loss {losses[0]} ({referenceName}) vs {losses[1]} ({otherName})");
        }
        var expected = reference.NamedParameters().Where(p => p.Name.Contains(".lora_")).ToList();
        var actual = other.NamedParameters().Where(p => p.Name.Contains(".lora_")).ToDictionary(p => p.Name, p => p.Parameter.ToArray());
        Assert.NotEmpty(expected);
        foreach (var (name, p) in expected) AssertClose(p.ToArray(), actual[name], 1e-4f);
    }
}
