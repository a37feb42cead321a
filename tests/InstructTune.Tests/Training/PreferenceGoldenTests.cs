using System.Text.Json;
using InstructTune.Data.Preference;
using InstructTune.Data.Records;
using InstructTune.Models;
using InstructTune.Models.Inference;
using InstructTune.Peft.Lora;
using InstructTune.Tests.Models;
using InstructTune.Training.Config;
using InstructTune.Training.Preference;

namespace InstructTune.Tests.Training;

/// <summary>
/// Every feedback objective against PyTorch (tools/golden/preference_losses.py, written from TRL's trainers): the
/// loss, TRL's logged metrics and the gradient of every trained matrix, for a tiny Llama with LoRA whose reference
/// is the same model with the adapter disabled (and one full fine-tuning case with given reference log-probs).
/// Each case runs as one micro-batch and as two (gradient accumulation must give the same step).
/// </summary>
public class PreferenceGoldenTests
{
    private const double Tol = 1e-5;
    private static readonly JsonElement Root =
        JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("preference", "losses.json"))).RootElement;

    private static JsonElement Case(string name) => Root.GetProperty("cases").EnumerateArray().First(c => c.GetProperty("name").GetString() == name);

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(v => v.GetInt32()).ToArray();

    private static TokenizedExample Seq(JsonElement e)
    {
        var ids = Ints(e.GetProperty("ids"));
        return new TokenizedExample(ids, Ints(e.GetProperty("labels")), new byte[ids.Length], 0, -1);
    }

    public static LlamaModel TinyModel()
    {
        var c = Root.GetProperty("config");
        var model = new LlamaModel(new LlamaConfig
        {
            VocabSize = c.GetProperty("vocab").GetInt32(), HiddenSize = c.GetProperty("dim").GetInt32(),
            IntermediateSize = c.GetProperty("ffn").GetInt32(), NumHiddenLayers = c.GetProperty("layers").GetInt32(),
            NumAttentionHeads = c.GetProperty("heads").GetInt32(), NumKeyValueHeads = c.GetProperty("kv").GetInt32(),
            RmsNormEps = c.GetProperty("eps").GetDouble(), RopeTheta = c.GetProperty("theta").GetDouble(), MaxPositionEmbeddings = 64,
        });
        HashInit.Initialize(model);
        return model;
    }

    /// <summary>The tiny model with the fixture's LoRA (hash-initialised as the script does, or the weights a case stores).</summary>
    public static LlamaModel TinyLoraModel(JsonElement? weights = null)
    {
        var model = TinyModel();
        var l = Root.GetProperty("lora");
        LoraInjector.Inject(model, new LoraConfig
        {
            Rank = l.GetProperty("rank").GetInt32(), Alpha = l.GetProperty("alpha").GetDouble(),
            TargetModules = l.GetProperty("targets").EnumerateArray().Select(t => t.GetString()!).ToList(),
        }, seed: 0);
        float init = (float)l.GetProperty("init").GetDouble();
        foreach (var (name, p) in model.NamedParameters().Where(p => !p.Parameter.Frozen))
            p.Load(weights is { } w
                ? w.GetProperty(name).EnumerateArray().Select(v => v.GetSingle()).ToArray()
                : HashInit.Uniform(HashInit.Fnv1a64(name), p.Length).Select(v => v * init).ToArray());
        return model;
    }

    public static PreferenceData Pairs() =>
        PreferenceData.Pairs(Root.GetProperty("pairs").EnumerateArray().Select(p => (Seq(p.GetProperty("chosen")), Seq(p.GetProperty("rejected")))).ToList(), padId: 0);

    private static PreferenceData Unpaired() =>
        PreferenceData.Unpaired(Root.GetProperty("unpaired").EnumerateArray().Select(u => (Seq(u), u.GetProperty("desirable").GetBoolean())).ToList(), padId: 0);

    private static PreferenceOptions Options(JsonElement o)
    {
        double Get(string key, double fallback) => o.TryGetProperty(key, out var v) ? v.GetDouble() : fallback;
        var objective = Enum.Parse<TrainingObjective>(o.GetProperty("objective").GetString()!, ignoreCase: true);
        var lossType = o.TryGetProperty("loss_type", out var lt) && lt.GetString() == "hinge" ? DpoLossType.Hinge : DpoLossType.Sigmoid;
        return new PreferenceOptions(objective, Get("beta", 0.1), lossType, Get("label_smoothing", 0), Get("desirable_weight", 1),
            Get("undesirable_weight", 1), Get("simpo_gamma", 0.5), Get("cpo_alpha", 0));
    }

    private static void AssertClose(double expected, double actual, string what) =>
        Assert.True(Math.Abs(expected - actual) <= Tol * Math.Max(1, Math.Abs(expected)), $"{what}: {actual:R} vs PyTorch {expected:R}");

    private static void Check(JsonElement c, LlamaModel model, IReadOnlyDictionary<string, double> metrics, string how)
    {
        foreach (var m in c.GetProperty("metrics").EnumerateObject())
        {
            Assert.True(metrics.ContainsKey(m.Name), $"{how}: metric {m.Name} is not logged");
            AssertClose(m.Value.GetDouble(), metrics[m.Name], $"{c.GetProperty("name").GetString()} {how} {m.Name}");
        }
        foreach (var g in c.GetProperty("grads").EnumerateObject())
        {
            var p = model.NamedParameters().First(n => n.Name == g.Name).Parameter;
            Assert.NotNull(p.Grad);
            var expected = g.Value.EnumerateArray().Select(v => v.GetDouble()).ToArray();
            double scale = Math.Max(1e-3, expected.Max(Math.Abs));
            var actual = p.Grad!.Span;
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= Tol * scale,
                    $"{c.GetProperty("name").GetString()} {how} grad {g.Name}[{i}]: {actual[i]:R} vs PyTorch {expected[i]:R} (scale {scale:G3})");
        }
    }

    private static IReadOnlyDictionary<string, double> Step(LlamaModel model, PreferenceObjective objective, PreferenceData data, bool accumulate)
    {
        int[] all = Enumerable.Range(0, data.Count).ToArray();
        var micro = accumulate ? [data.Collate(all[..2]), data.Collate(all[2..])] : new[] { data.Collate(all) };
        var outcome = objective.ForwardBackward(model, micro, checkpointLayers: false);
        var metrics = new Dictionary<string, double>(outcome.Metrics) { ["loss"] = outcome.Loss };
        return metrics;
    }

    [Theory]
    [InlineData("dpo", false)]
    [InlineData("dpo", true)]
    [InlineData("cdpo", false)]
    [InlineData("hinge", false)]
    [InlineData("ipo", false)]
    [InlineData("ipo", true)]
    [InlineData("orpo", false)]
    [InlineData("orpo", true)]
    [InlineData("simpo", false)]
    [InlineData("cpo_simpo", true)]
    public void PairwiseObjectiveMatchesPyTorch(string name, bool accumulate)
    {
        var c = Case(name);
        var model = TinyLoraModel();
        var options = Options(c.GetProperty("options"));
        var objective = new PreferenceObjective(options, Pairs(), options.NeedsReference ? ReferenceLogps.AdapterDisabled() : null);
        Check(c, model, Step(model, objective, Pairs(), accumulate), accumulate ? "2 micro-batches" : "1 batch");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void KtoMatchesPyTorchWithItsKlEstimate(bool accumulate)
    {
        var c = Case("kto");
        var model = TinyLoraModel(c.GetProperty("lora_weights"));
        var data = Unpaired();
        var objective = new PreferenceObjective(Options(c.GetProperty("options")), data, ReferenceLogps.AdapterDisabled());
        Check(c, model, Step(model, objective, data, accumulate), accumulate ? "2 micro-batches" : "1 batch");
        Assert.True(c.GetProperty("metrics").GetProperty("kl").GetDouble() > 0, "the fixture must exercise an unclamped KL");
    }

    [Fact]
    public void KtoKlSequencesPairPromptKWithCompletionKMinusOne()
    {
        var data = Unpaired();
        var expected = Root.GetProperty("kl").EnumerateArray().Select(Seq).ToList();
        Assert.Equal(expected.Count, data.KlSequences.Count);
        for (int k = 0; k < expected.Count; k++)
        {
            Assert.Equal(expected[k].Ids, data.KlSequences[k].Ids);
            Assert.Equal(expected[k].Labels, data.KlSequences[k].Labels);
        }
    }

    [Fact]
    public void FullFineTuningDpoMatchesPyTorchWithPrecomputedReference()
    {
        var c = Case("dpo_full");
        var model = TinyModel();
        var data = Pairs();
        // The script lists reference sums as chosen rows then rejected rows; sequence 2k is chosen k, 2k+1 rejected k.
        var r = c.GetProperty("reference").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        int P = data.Count;
        var bySequence = new double[2 * P];
        for (int k = 0; k < P; k++) { bySequence[2 * k] = r[k]; bySequence[2 * k + 1] = r[P + k]; }
        var objective = new PreferenceObjective(Options(c.GetProperty("options")), data, ReferenceLogps.FromValues(bySequence, null));
        Check(c, model, Step(model, objective, data, accumulate: true), "full, 2 micro-batches");
    }

    [Fact]
    public void ReferenceLogProbsEqualScoringTheBaseCheckpoint()
    {
        // The reference (LoRA disabled, precomputed) against the inference engine behind `itune score` on the saved base.
        var model = TinyLoraModel();
        var data = Pairs();
        var reference = ReferenceLogps.Precompute(model, data, rowsPerBatch: 3);
        var dir = Path.Combine(Path.GetTempPath(), "itune-pref-ref-" + Guid.NewGuid().ToString("N"));
        try
        {
            var plain = TinyModel();
            LlamaCheckpoint.Save(plain, dir);
            var scored = Scorer.Score(InferenceModel.Load(dir), data.Sequences.Select(s => s.Ids).ToList());
            for (int s = 0; s < data.Sequences.Count; s++)
            {
                var labels = data.Sequences[s].Labels;
                double sum = 0;
                for (int t = 1; t < labels.Length; t++) if (labels[t] != TokenizedExample.IgnoreIndex) sum += scored[s].NextTokenLogprobs[t - 1];
                AssertClose(sum, reference.SequenceSums![s], $"sequence {s} reference log-prob vs itune score");
            }
            // And the fixture's PyTorch reference (adapter disabled) for the same sequences.
            var r = Case("dpo").GetProperty("reference").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            for (int k = 0; k < data.Count; k++)
            {
                AssertClose(r[k], reference.SequenceSums![2 * k], $"chosen {k} vs PyTorch");
                AssertClose(r[data.Count + k], reference.SequenceSums![2 * k + 1], $"rejected {k} vs PyTorch");
            }
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }
}
