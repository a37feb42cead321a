using System.Text.Json;
using InstructTune.Checkpoints;
using InstructTune.Data.Batching;
using InstructTune.Training.Loop;

namespace InstructTune.Training.Checkpointing;

/// <summary>
/// Everything a resumed run needs to continue bit for bit, in one checkpoint folder: the trainable parameters
/// (exact float32, by name), AdamW's moments and step counts, the sampler position, the guard's running state
/// and every RNG state — plus whatever the recipe exports for users (the model in HF layout, or the adapter in
/// PEFT layout) and the effective config.
/// </summary>
public static class TrainerCheckpoint
{
    public const string StateFile = "trainer_state.json";
    public const string WeightsFile = "trainable.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string ConfigFile = "train_config.yaml";

    private sealed record State(int Step, SamplerState Sampler, double GuardEma, int GuardAccepted, int GuardConsecutiveBad,
        int GuardTotalSkipped, Dictionary<string, ulong[]> Rngs, Dictionary<string, int> OptimizerSteps,
        int GlobalMicroBatches = 0, int Ranks = 0);   // 0 in checkpoints older than data parallelism

    /// <summary>Writes the resume state into <paramref name="dir"/> (a CheckpointStore temp folder).</summary>
    public static void Write(Trainer trainer, string dir, string effectiveConfigYaml)
    {
        var weights = new List<TensorToWrite>();
        var moments = new List<TensorToWrite>();
        var steps = new Dictionary<string, int>();
        foreach (var (name, p) in trainer.Trainable)
        {
            weights.Add(TensorToWrite.FromF32(name, DType.F32, p.Shape.Select(d => (long)d).ToArray(), p.ToArray()));
            var s = trainer.Optimizer.GetState(p);
            steps[name] = s.Step;
            moments.Add(TensorToWrite.FromF32("exp_avg." + name, DType.F32, [s.M.Length], s.M));
            moments.Add(TensorToWrite.FromF32("exp_avg_sq." + name, DType.F32, [s.V.Length], s.V));
        }
        SafetensorsWriter.Write(Path.Combine(dir, WeightsFile), weights);
        SafetensorsWriter.Write(Path.Combine(dir, OptimizerFile), moments);
        var g = trainer.Guard.State;
        var state = new State(trainer.Step, trainer.Sampler.State, g.Ema, g.Accepted, g.ConsecutiveBad, g.TotalSkipped,
            trainer.Rngs.ToDictionary(r => r.Key, r => r.Value.State), steps, trainer.GlobalMicroBatches, trainer.Comm.Size);
        AtomicFile.WriteAllText(Path.Combine(dir, StateFile), JsonSerializer.Serialize(state, new JsonSerializerOptions { WriteIndented = true }));
        AtomicFile.WriteAllText(Path.Combine(dir, ConfigFile), effectiveConfigYaml);
    }

    /// <summary>Restores a trainer built with the same config and model from a checkpoint folder.</summary>
    public static void Restore(Trainer trainer, string dir)
    {
        var statePath = Path.Combine(dir, StateFile);
        if (!File.Exists(statePath)) throw new FileNotFoundException($"{dir} is not a training checkpoint ({StateFile} missing)", statePath);
        State? state;
        try { state = JsonSerializer.Deserialize<State>(File.ReadAllText(statePath)); }
        catch (Exception e) when (e is JsonException or NotSupportedException)
        {
            throw new InvalidDataException($"{statePath}: damaged trainer state ({e.Message.Split('\n')[0]}); resume from an earlier checkpoint", e);
        }
        if (state is null || state.Sampler is null || state.Rngs is null || state.OptimizerSteps is null || state.Step < 0)
            throw new InvalidDataException($"{statePath}: damaged trainer state (missing step, sampler, rngs or optimizer_steps); resume from an earlier checkpoint");
        // A resumed run must see the same global batch, or its data order and loss scale silently change.
        if (state.GlobalMicroBatches > 0 && state.GlobalMicroBatches != trainer.GlobalMicroBatches)
            throw new Config.ConfigException(
                $"training.gradient_accumulation_steps: {dir} was written with {state.GlobalMicroBatches} micro-batches per step " +
                $"({state.Ranks} rank(s)); this run takes {trainer.Options.GradientAccumulationSteps} × {trainer.Comm.Size} rank(s) = " +
                $"{trainer.GlobalMicroBatches}; set gradient_accumulation_steps so that it × ranks = {state.GlobalMicroBatches}");
        using (var weights = SafetensorsFile.Open(Path.Combine(dir, WeightsFile)))
        using (var moments = SafetensorsFile.Open(Path.Combine(dir, OptimizerFile)))
        {
            foreach (var (name, p) in trainer.Trainable)
            {
                if (!weights.Contains(name))
                    throw new InvalidDataException($"{dir}: checkpoint has no trainable parameter '{name}' (was it made with another method or model?)");
                var values = weights.ReadF32(name);
                if (values.Length != p.Length)
                    throw new InvalidDataException($"{dir}: '{name}' has {values.Length} values, the model expects {p.Length}");
                p.Load(values);
                var s = trainer.Optimizer.GetState(p);
                s.Step = state.OptimizerSteps.GetValueOrDefault(name);
                moments.ReadF32("exp_avg." + name).CopyTo(s.M, 0);
                moments.ReadF32("exp_avg_sq." + name).CopyTo(s.V, 0);
            }
        }
        trainer.Step = state.Step;
        try { trainer.Sampler.Restore(state.Sampler); }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or InvalidOperationException or NullReferenceException)
        {
            throw new InvalidDataException($"{statePath}: damaged trainer state (sampler: {e.Message}); resume from an earlier checkpoint", e);
        }
        trainer.Guard.Restore((state.GuardEma, state.GuardAccepted, state.GuardConsecutiveBad, state.GuardTotalSkipped));
        foreach (var (name, rng) in trainer.Rngs)
            if (state.Rngs.TryGetValue(name, out var s)) rng.State = s;
    }
}
