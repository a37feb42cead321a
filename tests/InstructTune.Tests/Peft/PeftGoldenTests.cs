using System.Text.Json;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Peft.Ia3;
using InstructTune.Peft.Lora;
using InstructTune.Peft.PrefixTuning;
using InstructTune.Peft.PromptTuning;
using InstructTune.Tests.Models;

namespace InstructTune.Tests.Peft;

/// <summary>
/// Each PEFT method against PyTorch written from PEFT's formulas (tools/golden/peft_methods.py →
/// tests/fixtures/peft/&lt;method&gt;.json): logits, loss and the gradient of every adapter parameter of a tiny Llama
/// with q/k/v biases. Base weights are recomputed with the script's generator (HashInit); adapter values come from
/// the fixture under their PEFT module names.
/// </summary>
public class PeftGoldenTests
{
    private static JsonElement Load(string method) => JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("peft", method + ".json"))).RootElement;
    internal static int[] Ints(JsonElement t) => t.GetProperty("data").EnumerateArray().Select(x => x.GetInt32()).ToArray();
    internal static float[] Floats(JsonElement t) => t.GetProperty("data").EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();

    /// <summary>Loads the golden's parameters into <paramref name="model"/>, runs the forward and backward on its segmented
    /// batch (B × T of its ids), and checks loss, logits (1e-5) and every trainable gradient (1e-5 of the tensor's scale) against
    /// PyTorch; the trainable parameter names must be exactly the golden's.</summary>
    internal static void AssertForwardAndGradientsMatch(LlamaModel model, JsonElement root)
    {
        foreach (var p in root.GetProperty("params").EnumerateArray()) model.GetParameter(p.GetProperty("name").GetString()!).Load(Floats(p));
        var shape = root.GetProperty("ids").GetProperty("shape");
        int B = shape[0].GetInt32(), T = shape[1].GetInt32();
        var batch = new LlamaBatch(new IntTensor(Ints(root.GetProperty("ids")), B, T))
        {
            Labels = new IntTensor(Ints(root.GetProperty("labels")), B, T), Segments = new IntTensor(Ints(root.GetProperty("segments")), B, T),
        };
        using var tape = Tape.Record();
        var o = model.Forward(batch);
        tape.Backward(o.Loss!);
        double loss = root.GetProperty("loss").GetDouble();
        Assert.True(Math.Abs(o.Loss!.Item() - loss) <= 1e-5 * loss, $"loss: torch {loss}, ours {o.Loss!.Item()}");
        var expected = Floats(root.GetProperty("logits")); var logits = o.Logits!.ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(logits[i] - expected[i]) <= 1e-5, $"logit {i}: torch {expected[i]}, ours {logits[i]}");
        var grads = root.GetProperty("grads").EnumerateArray().ToList();
        Assert.Equal(grads.Select(g => g.GetProperty("name").GetString()!).Order(), model.NamedParameters().Where(p => !p.Parameter.Frozen).Select(p => p.Name).Order());
        foreach (var g in grads)
        {
            string name = g.GetProperty("name").GetString()!;
            var want = Floats(g); var got = model.GetParameter(name).Grad!.ToArray();
            float tol = 1e-5f * Math.Max(1f, want.Max(Math.Abs));
            for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(got[i] - want[i]) <= tol, $"{name} grad[{i}]: torch {want[i]}, ours {got[i]}");
        }
    }

    /// <summary>The tiny golden Llama a PEFT fixture's "config" describes, hash-initialised as the golden scripts do.</summary>
    internal static LlamaModel Model(JsonElement c)
    {
        var model = new LlamaModel(new LlamaConfig
        {
            VocabSize = c.GetProperty("vocab").GetInt32(), HiddenSize = c.GetProperty("dim").GetInt32(),
            NumHiddenLayers = c.GetProperty("layers").GetInt32(), NumAttentionHeads = c.GetProperty("heads").GetInt32(),
            NumKeyValueHeads = c.GetProperty("kv").GetInt32(), IntermediateSize = c.GetProperty("ffn").GetInt32(),
            RmsNormEps = c.GetProperty("eps").GetDouble(), RopeTheta = c.GetProperty("theta").GetDouble(), QkvBias = true,
        });
        HashInit.Initialize(model);
        return model;
    }

    public static TheoryData<string> Methods() => new() { "dora", "ia3", "prompt", "prefix", "prefix_proj" };

    [Theory, MemberData(nameof(Methods))]
    public void LogitsLossAndAdapterGradientsMatchPyTorch(string method)
    {
        var root = Load(method);
        var model = Model(root.GetProperty("config"));
        switch (method)
        {
            case "dora": LoraInjector.Inject(model, new LoraConfig { Rank = 4, Alpha = 8, UseDora = true }, seed: 1); break;
            case "ia3": Ia3Injector.Inject(model, new Ia3Config()); break;
            case "prompt": PromptTuningInjector.Inject(model, new PromptTuningConfig { NumVirtualTokens = root.GetProperty("virtual_tokens").GetInt32() }, 1); break;
            default:
                PrefixTuningInjector.Inject(model, new PrefixTuningConfig
                {
                    NumVirtualTokens = root.GetProperty("virtual_tokens").GetInt32(), PrefixProjection = method == "prefix_proj",
                    EncoderHiddenSize = root.GetProperty("encoder_hidden").GetInt32(),
                }, 1);
                break;
        }
        foreach (var p in root.GetProperty("params").EnumerateArray())
            model.GetParameter(p.GetProperty("name").GetString()!).Load(Floats(p));

        var ids = new IntTensor(Ints(root.GetProperty("ids")), 2, 9);
        var labels = new IntTensor(Ints(root.GetProperty("labels")), 2, 9);
        using var tape = Tape.Record();
        var o = model.Forward(new LlamaBatch(ids) { Labels = labels });
        tape.Backward(o.Loss!);

        double loss = root.GetProperty("loss").GetDouble();
        Assert.True(Math.Abs(o.Loss!.Item() - loss) <= 1e-5 * loss, $"loss: torch {loss}, ours {o.Loss!.Item()}");
        var expected = Floats(root.GetProperty("logits"));
        var logits = o.Logits!.ToArray();
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(logits[i] - expected[i]) <= 1e-5, $"logit {i}: torch {expected[i]}, ours {logits[i]}");

        var trainable = model.NamedParameters().Where(p => !p.Parameter.Frozen).Select(p => p.Name).Order().ToList();
        var grads = root.GetProperty("grads").EnumerateArray().ToList();
        Assert.Equal(grads.Select(g => g.GetProperty("name").GetString()!).Order(), trainable);   // exactly the adapter's parameters train
        foreach (var g in grads)
        {
            string name = g.GetProperty("name").GetString()!;
            var want = Floats(g);
            var got = model.GetParameter(name).Grad!.ToArray();
            double scale = Math.Max(1.0, want.Max(Math.Abs));
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(got[i] - want[i]) <= 1e-5 * scale, $"{name}[{i}]: torch {want[i]}, ours {got[i]}");
        }
    }
}
