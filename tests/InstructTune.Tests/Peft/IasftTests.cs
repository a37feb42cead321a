using System.Text.Json;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Optim;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Peft;
using InstructTune.Peft.Iasft;
using InstructTune.Tests.Models;
using static InstructTune.Tests.Peft.LoraInvariantTests;

namespace InstructTune.Tests.Peft;

/// <summary>
/// IaSFT (Fisher-sparse tuning) against PyTorch (tools/golden/iasft_fisher.py → tests/fixtures/peft/iasft.json): the
/// diagonal Fisher over three batches and its top-k masks (per tensor and global) computed independently, a forward
/// and delta gradient with a sparse delta; then what only IaSFT has: only masked entries change, and a delta is
/// refused for any base but its own. The method × model invariants are rows of PeftInvariantTests.
/// </summary>
public class IasftTests
{
    private static readonly JsonElement Root = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("peft", "iasft.json"))).RootElement;
    private static int[] Ints(JsonElement t) => PeftGoldenTests.Ints(t);
    private static int[] IntList(JsonElement a) => a.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    private static float[] FloatList(JsonElement a) => a.EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();

    private static LlamaModel GoldenModel() => PeftGoldenTests.Model(Root.GetProperty("config"));

    private static LlamaBatch GoldenBatch(int n)
    {
        var b = Root.GetProperty("batches")[n];
        return new LlamaBatch(new IntTensor(Ints(b.GetProperty("ids")), 2, 9)) { Labels = new IntTensor(Ints(b.GetProperty("labels")), 2, 9) };
    }

    private static (IReadOnlyList<(string Name, Engine.Modules.Linear Layer)> Targets, float[][] Fisher) GoldenFisher(LlamaModel model)
    {
        var targets = IasftSelection.Targets(model, new IasftConfig());
        int batches = Root.GetProperty("batches").GetArrayLength();
        var fisher = IasftSelection.EstimateFisher(model, targets, batches, n =>
        {
            using var tape = Tape.Record();
            tape.Backward(model.Forward(GoldenBatch(n)).Loss!);
        });
        return (targets, fisher);
    }

    [Fact]
    public void TheMaskIsExactlyTheTopKOfTheFisherPyTorchComputes()
    {
        var model = GoldenModel();
        var (targets, fisher) = GoldenFisher(model);
        Assert.All(model.NamedParameters(), p => Assert.True(p.Parameter.Frozen == false, $"{p.Name}: frozen state restored after the Fisher"));

        var perTensor = IasftSelection.Select(fisher, Root.GetProperty("fraction_per_tensor").GetDouble(), FisherSelection.PerTensor);
        var want = Root.GetProperty("per_tensor").EnumerateArray().ToList();
        Assert.Equal(want.Select(w => w.GetProperty("name").GetString()), targets.Select(t => t.Name));
        for (int i = 0; i < want.Count; i++)
        {
            string name = targets[i].Name;
            Assert.Equal(IntList(want[i].GetProperty("index")), perTensor[i]);   // the same entries, exactly
            var torchF = FloatList(want[i].GetProperty("fisher"));
            for (int j = 0; j < torchF.Length; j++)
                Assert.True(Math.Abs(fisher[i][perTensor[i][j]] - torchF[j]) <= 1e-5 * torchF[j] + 1e-12,
                    $"{name}[{perTensor[i][j]}]: Fisher torch {torchF[j]}, ours {fisher[i][perTensor[i][j]]}");
            // The threshold: every kept entry's Fisher ≥ every dropped one's.
            var kept = new HashSet<int>(perTensor[i]);
            float minKept = perTensor[i].Min(j => fisher[i][j]);
            float maxDropped = Enumerable.Range(0, fisher[i].Length).Where(j => !kept.Contains(j)).Max(j => fisher[i][j]);
            Assert.True(minKept > maxDropped, $"{name}: kept min {minKept} ≤ dropped max {maxDropped}");
            Assert.True(Math.Abs(minKept - want[i].GetProperty("kth").GetDouble()) <= 1e-5 * minKept, $"{name}: threshold");
        }

        var global = IasftSelection.Select(fisher, Root.GetProperty("fraction_global").GetDouble(), FisherSelection.Global);
        var g = Root.GetProperty("global");
        Assert.Equal(g.GetProperty("k").GetInt32(), global.Sum(x => x.Length));
        for (int i = 0; i < targets.Count; i++)
            Assert.Equal(IntList(g.GetProperty("index").GetProperty(targets[i].Name)), global[i]);
    }

    [Fact]
    public void ASparseDeltaGivesPyTorchsLogitsLossAndDeltaGradients()
    {
        var model = GoldenModel();
        var d = Root.GetProperty("delta");
        var masks = Root.GetProperty("per_tensor").EnumerateArray().Select(w => (w.GetProperty("name").GetString()!, IntList(w.GetProperty("index")))).ToList();
        var layers = IasftInjector.Inject(model, masks);
        foreach (var (name, l) in layers) l.Values.Load(FloatList(d.GetProperty("values").GetProperty(name)));
        using var tape = Tape.Record();
        var o = model.Forward(GoldenBatch(0));
        tape.Backward(o.Loss!);
        double loss = d.GetProperty("loss").GetDouble();
        Assert.True(Math.Abs(o.Loss!.Item() - loss) <= 1e-5 * loss, $"loss: torch {loss}, ours {o.Loss!.Item()}");
        var expected = d.GetProperty("logits").GetProperty("data").EnumerateArray().Select(x => (float)x.GetDouble()).ToArray();
        var logits = o.Logits!.ToArray();
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(logits[i] - expected[i]) <= 1e-5, $"logit {i}: torch {expected[i]}, ours {logits[i]}");
        Assert.Equal(layers.Select(l => l.Name + ".iasft_values").Order(), model.NamedParameters().Where(p => !p.Parameter.Frozen).Select(p => p.Name).Order());
        foreach (var (name, l) in layers)
        {
            var want = FloatList(d.GetProperty("grads").GetProperty(name));
            var got = l.Values.Grad!.ToArray();
            float tol = 1e-5f * Math.Max(1f, want.Max(Math.Abs));
            for (int j = 0; j < want.Length; j++) Assert.True(Math.Abs(got[j] - want[j]) <= tol, $"{name} grad[{j}]: torch {want[j]}, ours {got[j]}");
        }
    }

    [Theory, InlineData("llama-gqa"), InlineData("qwen2-tied-bias")]
    public void TrainingChangesOnlyTheMaskedEntriesOfTheWeights(string kind)
    {
        var model = TinyModel(kind);
        var before = model.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter.ToArray());
        var layers = PeftInvariantTests.InjectIasft(model, PeftInvariantTests.IasftConfig with { Selection = FisherSelection.Global });
        var optimizer = new AdamW(model.Parameters().Where(p => !p.Frozen).ToList(), lr: 1e-2f, weightDecay: 0f);
        Assert.Equal(layers.Sum(l => l.Layer.Index.Length), optimizer.Groups.Sum(g => g.Parameters.Sum(p => p.Length)));   // optimizer state ∝ k
        for (int step = 0; step < 3; step++)
        {
            using (var tape = Tape.Record()) tape.Backward(model.Forward(Batch()).Loss!);
            optimizer.Step();
            model.ZeroGrad();
        }
        Assert.Equal(layers.Sum(l => 2L * l.Layer.Index.Length), optimizer.StateValues);
        PeftRegistry.MergeAndUnload(model);
        int changed = 0;
        var masks = layers.ToDictionary(l => l.Name + ".weight", l => new HashSet<int>(l.Layer.Index));
        foreach (var (name, p) in model.NamedParameters())
        {
            var a = before[name]; var b = p.ToArray();
            for (int i = 0; i < a.Length; i++)
                if (a[i] != b[i])
                {
                    Assert.True(masks.TryGetValue(name, out var m) && m.Contains(i), $"{name}[{i}] changed but is not in the mask");
                    changed++;
                }
        }
        Assert.True(changed > masks.Values.Sum(m => m.Count) / 2, $"only {changed} masked entries changed");
    }

    private static string SavedDelta(string kind, out LlamaModel trained)
    {
        trained = TinyModel(kind);
        var layers = PeftInvariantTests.InjectIasft(trained, PeftInvariantTests.IasftConfig);
        var rng = new Rng(4);
        foreach (var (_, l) in layers) rng.Normal(l.Values.Span, 0, 0.2f);
        var dir = Directory.CreateTempSubdirectory("iasft").FullName;
        IasftAdapterIO.Save(trained, PeftInvariantTests.IasftConfig, dir);
        return dir;
    }

    [Fact]
    public void ADeltaForAnotherModelIsRefusedNamingTheProblem()
    {
        var dir = SavedDelta("llama-gqa", out _);
        // Same architecture, other weights: the base checksum differs.
        var other = TinyModel("llama-gqa");
        other.InitializeWeights(8, 0.1f);
        var e = Assert.Throws<InvalidDataException>(() => PeftRegistry.LoadInto(other, dir));
        Assert.Contains("another base model", e.Message);
        // Another architecture: a weight of another shape.
        e = Assert.Throws<InvalidDataException>(() => PeftRegistry.LoadInto(TinyModel("qwen2-tied-bias"), dir));
        Assert.Contains("model.layers.0.mlp.down_proj", e.Message);
        Assert.Contains("32×48", e.Message);
        // The base it was made for, with the delta already merged in.
        var merged = TinyModel("llama-gqa");
        PeftRegistry.LoadInto(merged, dir);
        PeftRegistry.MergeAndUnload(merged);
        e = Assert.Throws<InvalidDataException>(() => PeftRegistry.LoadInto(merged, dir));
        Assert.Contains("already merged", e.Message);
        // The inference path refuses the same way.
        var baseDir = Directory.CreateTempSubdirectory("base").FullName;
        LlamaCheckpoint.Save(other, baseDir);
        using var inference = InstructTune.Models.Inference.InferenceModel.Load(baseDir);
        e = Assert.Throws<InvalidDataException>(() => PeftRegistry.ApplyTo(inference, dir));
        Assert.Contains("another base model", e.Message);
    }

    [Fact]
    public void TargetsOutsideTheDecoderLayersOrMissingAreRefused()
    {
        var e = Assert.Throws<ArgumentException>(() => IasftSelection.Targets(TinyModel("llama-gqa"), new IasftConfig { TargetModules = ["qq_proj"] }));
        Assert.Contains("qq_proj", e.Message);
        e = Assert.Throws<ArgumentException>(() => IasftSelection.Targets(TinyModel("llama-gqa"), new IasftConfig { TargetModules = ["lm_head"] }));
        Assert.Contains("lm_head", e.Message);
    }

    [Fact]
    public void TiesAtTheThresholdGoInTensorThenIndexOrder()
    {
        float[][] f = [[1, 3, 2, 2], [2, 5, 2]];
        Assert.Equal([[1, 2, 3], [0, 1]], IasftSelection.TopK(f, 5));     // 5, 3, then the first three of four 2s
        Assert.Equal([[1], [1]], IasftSelection.TopK(f, 2));
        Assert.Equal(2, IasftSelection.K(0.005, 201));                     // ⌈1.005⌉
        Assert.Equal(1, IasftSelection.K(0.005, 10));
    }
}
