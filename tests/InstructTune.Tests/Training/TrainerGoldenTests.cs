using System.Runtime.InteropServices;
using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Data.Batching;
using InstructTune.Engine.Optim;
using InstructTune.Models;
using InstructTune.Peft.Lora;
using InstructTune.Training.Loop;
using InstructTune.Training.Losses;

namespace InstructTune.Tests.Training;

/// <summary>
/// 20 optimizer steps of full fine-tuning and of LoRA against PyTorch (tools/golden/train_steps.py): same init,
/// same batches (packed rows with document ids, response-only labels), AdamW with decay on matrices only,
/// global-norm clipping, cosine schedule with warm-up, 2 micro-batches normalised by the step's tokens.
/// </summary>
public class TrainerGoldenTests
{
    private static readonly JsonElement Meta =
        JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("train", "steps.json"))).RootElement;

    private static LlamaModel InitialModel(SafetensorsFile f)
    {
        var model = new LlamaModel(new LlamaConfig
        {
            VocabSize = 61, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 2, NumAttentionHeads = 4,
            NumKeyValueHeads = 2, RmsNormEps = 1e-5, RopeTheta = 10000, MaxPositionEmbeddings = 64,
        });
        foreach (var (name, _) in model.NamedParameters()) model.SetParameter(name, f.ReadF32("init." + name));
        return model;
    }

    private static int[] Ints(SafetensorsFile f, string name) => MemoryMarshal.Cast<byte, int>(f.Bytes(name)).ToArray();

    private static List<Batch> Batches(SafetensorsFile f)
    {
        int B = Meta.GetProperty("batch").GetInt32(), T = Meta.GetProperty("seq").GetInt32();
        int count = Meta.GetProperty("steps").GetInt32() * Meta.GetProperty("accumulation").GetInt32();
        var batches = new List<Batch>();
        for (int i = 0; i < count; i++)
        {
            var docs = Ints(f, $"batch.{i}.documents");
            batches.Add(new Batch(B, T, Ints(f, $"batch.{i}.ids"), Ints(f, $"batch.{i}.labels"), Ints(f, $"batch.{i}.positions"),
                docs, new byte[B * T], docs.Select(d => d >= 0 ? 0 : -1).ToArray(), [], 0));
        }
        return batches;
    }

    private static Trainer MakeTrainer(LlamaModel model, IReadOnlyList<(string, Engine.Tensors.Parameter)> trainable, List<Batch> batches)
    {
        var optimizer = new AdamW(ParamGroup.DecayMatricesOnly(trainable.Select(t => t.Item2), (float)Meta.GetProperty("weight_decay").GetDouble()),
            lr: 0f, beta1: 0.9f, beta2: 0.999f, eps: 1e-8f);
        var schedule = new LrSchedule(LrScheduleKind.Cosine, (float)Meta.GetProperty("lr").GetDouble(),
            Meta.GetProperty("warmup").GetInt32(), Meta.GetProperty("steps").GetInt32());
        return new Trainer(model, trainable, optimizer, new ListBatchSource(batches),
            new TrainerOptions(Meta.GetProperty("accumulation").GetInt32(), (float)Meta.GetProperty("clip").GetDouble(), schedule,
                new ObjectiveOptions(), TaskCount: 1));
    }

    private static void AssertLossesMatch(string key, IReadOnlyList<double> actual)
    {
        var expected = Meta.GetProperty(key).EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(expected.Length, actual.Count);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-4 * Math.Abs(expected[i]),
                $"step {i + 1}: loss {actual[i]:R} vs PyTorch {expected[i]:R}");
    }

    private static void AssertWeightsMatch(SafetensorsFile f, string prefix, IEnumerable<(string Name, Engine.Tensors.Parameter P)> parameters)
    {
        foreach (var (name, p) in parameters)
        {
            var expected = f.ReadF32(prefix + name);
            var actual = p.ToArray();
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5f * Math.Max(1f, Math.Abs(expected[i])),
                    $"{name}[{i}]: {actual[i]:R} vs PyTorch {expected[i]:R}");
        }
    }

    [Fact]
    public void FullFineTuningMatchesPyTorchForTwentySteps()
    {
        using var f = SafetensorsFile.Open(TestPaths.Fixtures("train", "steps.safetensors"));
        var model = InitialModel(f);
        var trainable = model.NamedParameters().ToList();
        var trainer = MakeTrainer(model, trainable, Batches(f));
        var losses = new List<double>();
        for (int s = 0; s < 20; s++) losses.Add(trainer.TrainStep().Loss);
        AssertLossesMatch("full_losses", losses);
        AssertWeightsMatch(f, "full_final.", trainable);
    }

    [Fact]
    public void LoraMatchesPyTorchForTwentySteps()
    {
        using var f = SafetensorsFile.Open(TestPaths.Fixtures("train", "steps.safetensors"));
        var model = InitialModel(f);
        LoraInjector.Inject(model, new LoraConfig { Rank = Meta.GetProperty("rank").GetInt32(), Alpha = Meta.GetProperty("alpha").GetDouble() }, seed: 0);
        var trainable = model.NamedParameters().Where(p => !p.Parameter.Frozen).ToList();
        foreach (var (name, p) in trainable) p.Load(f.ReadF32("lora_init." + name));
        var trainer = MakeTrainer(model, trainable, Batches(f));
        var losses = new List<double>();
        for (int s = 0; s < 20; s++) losses.Add(trainer.TrainStep().Loss);
        AssertLossesMatch("lora_losses", losses);
        AssertWeightsMatch(f, "lora_final.", trainable);
    }
}

public class NeftuneTests
{
    [Fact]
    public void NoiseHasTheNeftuneMagnitudeAndOnlyWhileTraining()
    {
        var model = new LlamaModel(new LlamaConfig { VocabSize = 50, HiddenSize = 16, IntermediateSize = 32, NumHiddenLayers = 1, NumAttentionHeads = 2, NumKeyValueHeads = 2 });
        model.InitializeWeights(1);
        var ids = new Engine.Tensors.IntTensor(Enumerable.Range(0, 8).ToArray(), 1, 8);
        float[] Logits(bool training, float alpha)
        {
            using var tape = Engine.Autograd.Tape.Record(recordGrad: training);
            return model.Forward(new LlamaBatch(ids), new LlamaForwardOptions { NeftuneAlpha = alpha, NoiseRng = new Engine.Tensors.Rng(3) }).Logits!.ToArray();
        }
        var clean = Logits(false, 0);
        Assert.Equal(clean, Logits(false, 5f));          // evaluation: no noise
        Assert.Equal(clean, Logits(true, 0f));           // alpha 0: no noise
        Assert.NotEqual(clean, Logits(true, 5f));        // training with alpha: noise
        // The noise itself: U(−1,1)·alpha/√(T·d) — its largest value must sit just under that bound.
        var noise = new float[8 * 16];
        new Engine.Tensors.Rng(3).Uniform(noise, -5f / MathF.Sqrt(8 * 16), 5f / MathF.Sqrt(8 * 16));
        Assert.InRange(noise.Max(Math.Abs), 0.9f * 5f / MathF.Sqrt(128), 5f / MathF.Sqrt(128));
    }
}
