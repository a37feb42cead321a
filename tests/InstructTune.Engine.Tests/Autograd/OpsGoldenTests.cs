using System.Text.Json;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Tests.Autograd;

/// <summary>
/// Every differentiable op, forward and backward, against PyTorch (tests/fixtures/engine/ops.json written by
/// tools/golden/engine_ops.py). Error = max |ours − torch| / max |torch| per output or gradient, ≤ 1e-5.
/// </summary>
public class OpsGoldenTests
{
    private static readonly JsonElement Root = Fixture.Load("ops.json");

    public static TheoryData<string> Cases() => new(Root.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("name").GetString()!));

    [Theory, MemberData(nameof(Cases))]
    public void MatchesPyTorch(string name)
    {
        var c = Root.GetProperty("cases").EnumerateArray().First(x => x.GetProperty("name").GetString() == name);
        var inputs = c.GetProperty("inputs").EnumerateObject().ToDictionary(p => p.Name, p =>
        {
            var t = Tensor.FromArray(Fixture.Floats(p.Value), Fixture.Shape(p.Value));
            t.RequiresGrad = true;
            return t;
        });
        var consts = c.GetProperty("consts");
        var prm = c.GetProperty("params");
        Tensor result;
        using (var tape = Tape.Record())
        {
            result = Run(name, inputs, consts, prm);
            Assert.True(Fixture.RelError(Fixture.Floats(c.GetProperty("out")), result.ToArray()) <= 1e-5,
                $"{name} forward: rel error {Fixture.RelError(Fixture.Floats(c.GetProperty("out")), result.ToArray()):g3}");
            var w = Fixture.Floats(c.GetProperty("w"));
            tape.Backward(result, Tensor.FromArray(w, result.Shape));
            foreach (var g in c.GetProperty("grads").EnumerateObject())
            {
                double err = Fixture.RelError(Fixture.Floats(g.Value), inputs[g.Name].Grad!.ToArray());
                Assert.True(err <= 1e-5, $"{name} d{g.Name}: rel error {err:g3}");
            }
        }
    }

    private static Tensor Run(string name, Dictionary<string, Tensor> t, JsonElement consts, JsonElement p)
    {
        float F(string k) => (float)p.GetProperty(k).GetDouble();
        int I(string k) => p.GetProperty(k).GetInt32();
        switch (name)
        {
            case "linear": return Ops.Linear(t["x"], t["w"], t["b"]);
            case "rmsnorm": return Ops.RmsNorm(t["x"], t["w"], F("eps"));
            case "layernorm": return Ops.LayerNorm(t["x"], t["w"], t["b"], F("eps"));
            case "silu": return Ops.Silu(t["x"]);
            case "gelu": return Ops.Gelu(t["x"]);
            case "gelu_tanh": return Ops.Gelu(t["x"], tanhApproximation: true);
            case "swiglu": return Ops.SwiGlu(t["g"], t["u"]);
            case "softmax": return Ops.Softmax(t["x"]);
            case "embedding": return Ops.Embedding(t["w"], new IntTensor(Fixture.Ints(consts.GetProperty("ids")), 6));
            case "cross_entropy" or "cross_entropy_smooth":
                return Ops.CrossEntropy(t["x"], Fixture.Ints(consts.GetProperty("targets")), F("smoothing"));
        }
        if (name.StartsWith("rope"))
        {
            int hd = I("hd"), H = I("H");
            var inv = RopeKernel.InverseFrequencies(hd, p.GetProperty("theta").GetDouble());
            if (p.TryGetProperty("scaling", out var s))
            {
                if (s.GetString() == "linear") RopeKernel.ScaleLinear(inv, p.GetProperty("factor").GetDouble());
                else RopeKernel.ScaleLlama3(inv, p.GetProperty("factor").GetDouble(), p.GetProperty("low").GetDouble(), p.GetProperty("high").GetDouble(), I("orig"));
            }
            var pos = Fixture.Ints(consts.GetProperty("pos"));
            var cos = Tensor.Zeros(pos.Length, hd / 2); var sin = Tensor.Zeros(pos.Length, hd / 2);
            RopeKernel.CosSin(pos, inv, cos.Span, sin.Span);
            return Ops.Rope(t["x"], cos, sin, H, hd);
        }
        if (name.StartsWith("attention"))
        {
            int B = I("B"), T = I("T"), H = I("H"), KV = I("KV"), hd = I("hd");
            var mask = new AttentionMask
            {
                Window = I("window"),
                KeyValid = consts.TryGetProperty("key_valid", out var kv) ? Fixture.Ints(kv) : null,
                DocIds = consts.TryGetProperty("doc", out var dc) ? Fixture.Ints(dc) : null,
            };
            return Ops.Attention(t["q"], t["k"], t["v"], new AttentionDims(B, T, T, H, KV, hd), 1f / MathF.Sqrt(hd), mask);
        }
        throw new InvalidOperationException("unknown golden case " + name);
    }
}
