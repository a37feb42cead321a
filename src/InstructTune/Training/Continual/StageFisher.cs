using InstructTune.Checkpoints;
using InstructTune.Data.Batching;
using InstructTune.Data.Records;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Training.Config;
using InstructTune.Training.Losses;
using InstructTune.Training.Regularizers;

namespace InstructTune.Training.Continual;

/// <summary>
/// EWC's diagonal Fisher of one stage and its file. F_i = (1/N)·Σ_n (∂L_n/∂θ_i)², the empirical Fisher at the stage's
/// final weights θ*, where L_n is the mean response-token cross-entropy of example n alone (one example per unit, so
/// the squares are per-example, not of a batch mean). N = continual.fisher_samples examples taken in a seeded order
/// from the stage's training mixture (all of them when 0 or fewer exist).
/// File (safetensors, float32): <c>fisher.&lt;parameter&gt;</c> and <c>anchor.&lt;parameter&gt;</c> for every trainable
/// parameter, by its model name; metadata <c>samples</c>, <c>stage</c>. loss.ewc_reference_path reads the same file.
/// </summary>
public static class StageFisher
{
    public const string FileName = "fisher.safetensors";

    /// <summary>
    /// The Fisher over <paramref name="units"/> units: <paramref name="backward"/>(n) leaves unit n's loss gradient in
    /// the parameters' Grad (they are zeroed before each unit and after the last).
    /// </summary>
    public static float[][] Estimate(IReadOnlyList<Parameter> parameters, int units, Action<int> backward) =>
        EwcRegularizer.EstimateFisher(parameters, units, backward);

    /// <summary>The Fisher of <paramref name="examples"/> at the model's current weights, one example per unit.</summary>
    public static (float[][] Fisher, int Samples) OfExamples(LlamaModel model, IReadOnlyList<Parameter> parameters,
        IReadOnlyList<TokenizedExample> examples, int samples, int padId, int maxSeqLen, ObjectiveOptions objective, int taskCount)
    {
        var learned = examples.Where(e => e.LearnedTokens > 0).ToList();
        if (learned.Count == 0) throw new ConfigException("loss.ewc_lambda: the stage has no example with learned tokens to estimate the Fisher on", "loss.ewc_lambda");
        var sampler = new DataSampler(learned, new BatchOptions(BatchMode.Bucketed, 1, maxSeqLen), padId, seed: 17);
        int n = samples > 0 ? Math.Min(samples, learned.Count) : learned.Count;
        // EWC's Fisher is of the plain SFT loss: no NEFTune noise, no uncertainty weights.
        var plain = objective with { UncertaintyLogVars = null, NeftuneAlpha = 0, NoiseRng = null };
        var fisher = Estimate(parameters, n, _ =>
        {
            var b = sampler.Next();
            var counts = InstructionObjective.Count([b], plain, taskCount);
            using var tape = Tape.Record();
            tape.Backward(InstructionObjective.Forward(model, b, counts, plain, firstMicroBatch: true).Loss);
        });
        return (fisher, n);
    }

    public static void Write(string path, IReadOnlyList<(string Name, Parameter Parameter)> parameters, float[][] fisher, int samples, int stage)
    {
        var tensors = new List<TensorToWrite>();
        for (int i = 0; i < parameters.Count; i++)
        {
            var (name, p) = parameters[i];
            long[] shape = p.Shape.Select(d => (long)d).ToArray();
            tensors.Add(TensorToWrite.FromF32("fisher." + name, DType.F32, shape, fisher[i]));
            tensors.Add(TensorToWrite.FromF32("anchor." + name, DType.F32, shape, p.ToArray()));
        }
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["samples"] = samples.ToString(), ["stage"] = stage.ToString() });
    }

    /// <summary>Reads a Fisher file for these parameters; a missing file, parameter or shape is refused naming <paramref name="key"/>.</summary>
    public static (float[][] Fisher, float[][] Anchor) Read(string path, IReadOnlyList<(string Name, Parameter Parameter)> parameters, string key)
    {
        if (!File.Exists(path)) throw new ConfigException($"{key}: '{path}' does not exist (a {FileName} written under run_dir/stages/stage-K/)", key);
        SafetensorsFile file;
        try { file = SafetensorsFile.Open(path); }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            throw new ConfigException($"{key}: '{path}' is not a readable safetensors file ({e.Message})", key);
        }
        using (file)
        {
            var fisher = new float[parameters.Count][];
            var anchor = new float[parameters.Count][];
            for (int i = 0; i < parameters.Count; i++)
            {
                var (name, p) = parameters[i];
                if (!file.Contains("fisher." + name) || !file.Contains("anchor." + name))
                    throw new ConfigException($"{key}: '{path}' has no Fisher for parameter '{name}' (was it written for another model or training.method?)", key);
                fisher[i] = file.ReadF32("fisher." + name);
                anchor[i] = file.ReadF32("anchor." + name);
                if (fisher[i].Length != p.Length || anchor[i].Length != p.Length)
                    throw new ConfigException($"{key}: '{path}' holds {fisher[i].Length} values for '{name}', this model has {p.Length} (another model?)", key);
            }
            int extra = file.Tensors.Keys.Count(k => k.StartsWith("fisher.", StringComparison.Ordinal)) - parameters.Count;
            if (extra > 0)
                throw new ConfigException($"{key}: '{path}' holds {extra} more Fisher tensor(s) than this run trains (written for another model or training.method?)", key);
            return (fisher, anchor);
        }
    }
}
