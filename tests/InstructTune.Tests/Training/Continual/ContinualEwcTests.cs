using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Data.Batching;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Peft.Lora;
using InstructTune.Training.Continual;
using InstructTune.Training.Losses;
using InstructTune.Training.Regularizers;
using System.Runtime.InteropServices;

namespace InstructTune.Tests.Training.Continual;

/// <summary>
/// EWC across stages against PyTorch (tools/golden/continual_ewc.py): the empirical Fisher of 6 units at the LoRA weights
/// of the trainer fixture, and the penalty λ/2·Σ F(θ − θ*)² with its gradient at another θ.
/// </summary>
public class ContinualEwcTests
{
    private static readonly JsonElement Meta =
        JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("continual", "ewc.json"))).RootElement;

    private static int[] Ints(SafetensorsFile f, string name) => MemoryMarshal.Cast<byte, int>(f.Bytes(name)).ToArray();

    private static Batch FixtureBatch(SafetensorsFile f, int i)
    {
        var docs = Ints(f, $"batch.{i}.documents");
        int B = 2, T = docs.Length / 2;
        return new Batch(B, T, Ints(f, $"batch.{i}.ids"), Ints(f, $"batch.{i}.labels"), Ints(f, $"batch.{i}.positions"),
            docs, new byte[B * T], docs.Select(d => d >= 0 ? 0 : -1).ToArray(), [], 0);
    }

    private static (LlamaModel Model, List<(string Name, Parameter Parameter)> Lora) FixtureModel(SafetensorsFile f, string loraPrefix)
    {
        var model = new LlamaModel(new LlamaConfig
        {
            VocabSize = 61, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2, NumAttentionHeads = 4,
            NumKeyValueHeads = 2, RmsNormEps = 1e-5, RopeTheta = 10000, MaxPositionEmbeddings = 64,
        });
        foreach (var (name, _) in model.NamedParameters()) model.SetParameter(name, f.ReadF32("init." + name));
        LoraInjector.Inject(model, new LoraConfig { Rank = 4, Alpha = 8 }, seed: 0);
        var lora = model.NamedParameters().Where(p => !p.Parameter.Frozen).ToList();
        foreach (var (name, p) in lora) p.Load(f.ReadF32(loraPrefix + name));
        return (model, lora);
    }

    [Fact]
    public void FisherPenaltyAndGradientMatchPyTorch()
    {
        using var steps = SafetensorsFile.Open(TestPaths.Fixtures("train", "steps.safetensors"));
        using var golden = SafetensorsFile.Open(TestPaths.Fixtures("continual", "ewc.safetensors"));
        var (model, lora) = FixtureModel(steps, "lora_final.");
        var parameters = lora.Select(p => p.Parameter).ToList();
        int units = Meta.GetProperty("units").GetInt32();
        var objective = new ObjectiveOptions();
        var fisher = StageFisher.Estimate(parameters, units, n =>
        {
            var b = FixtureBatch(steps, n);
            var counts = InstructionObjective.Count([b], objective, 1);
            using var tape = Engine.Autograd.Tape.Record();
            tape.Backward(InstructionObjective.Forward(model, b, counts, objective, true).Loss);
        });
        // Relative 1e-5 of each tensor's largest value (float32 gradients squared; tiny entries carry rounding only).
        for (int i = 0; i < lora.Count; i++)
            AssertClose(golden.ReadF32("fisher." + lora[i].Name), fisher[i], 1e-5, "fisher." + lora[i].Name);

        // The penalty at θ = the LoRA init, around θ* = the final weights, with that Fisher.
        double lambda = Meta.GetProperty("ewc_lambda").GetDouble();
        var anchor = parameters.Select(p => p.ToArray()).ToArray();
        foreach (var (name, p) in lora) p.Load(steps.ReadF32("lora_init." + name));
        var ewc = new EwcRegularizer(parameters, lora.Select(l => golden.ReadF32("fisher." + l.Name)).ToArray(), lambda, anchor);
        foreach (var p in parameters) p.ZeroGrad();
        double penalty = ewc.AddToGradients();
        double expected = Meta.GetProperty("penalty").GetDouble();
        Assert.True(Math.Abs(penalty - expected) <= 1e-5 * expected, $"penalty {penalty:R} vs PyTorch {expected:R}");
        for (int i = 0; i < lora.Count; i++)
            AssertClose(golden.ReadF32("penalty_grad." + lora[i].Name), parameters[i].Grad!.ToArray(), 1e-5, "penalty_grad." + lora[i].Name);
    }

    [Fact]
    public void FisherFileRoundTripsAndRefusesAnotherModel()
    {
        using var steps = SafetensorsFile.Open(TestPaths.Fixtures("train", "steps.safetensors"));
        var (_, lora) = FixtureModel(steps, "lora_final.");
        var fisher = lora.Select((p, i) => Enumerable.Range(0, p.Parameter.Length).Select(j => (float)(i + j * 1e-3)).ToArray()).ToArray();
        var dir = Directory.CreateTempSubdirectory("fisherfile").FullName;
        var path = Path.Combine(dir, StageFisher.FileName);
        StageFisher.Write(path, lora, fisher, samples: 6, stage: 1);
        var (read, anchor) = StageFisher.Read(path, lora, "loss.ewc_reference_path");
        for (int i = 0; i < lora.Count; i++)
        {
            Assert.Equal(fisher[i], read[i]);
            Assert.Equal(lora[i].Parameter.ToArray(), anchor[i]);
        }
        // Another model: one parameter fewer / renamed, or another shape.
        var other = lora.Skip(1).Select(p => ("x." + p.Name, p.Parameter)).ToList();
        var e = Assert.Throws<InstructTune.Training.Config.ConfigException>(() => StageFisher.Read(path, other, "loss.ewc_reference_path"));
        Assert.Contains("loss.ewc_reference_path", e.Message);
        var e2 = Assert.Throws<InstructTune.Training.Config.ConfigException>(() => StageFisher.Read(Path.Combine(dir, "missing.safetensors"), lora, "loss.ewc_reference_path"));
        Assert.Contains("does not exist", e2.Message);
        var fewer = lora.Take(3).ToList();
        Assert.Throws<InstructTune.Training.Config.ConfigException>(() => StageFisher.Read(path, fewer, "loss.ewc_reference_path"));
    }

    private static void AssertClose(float[] expected, float[] actual, double rel, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= rel * scale + 1e-12,
                $"{what}[{i}]: {actual[i]:R} vs PyTorch {expected[i]:R} (scale {scale:R})");
    }
}
