using InstructTune.Data.Batching;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Models.InstructionAware;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Training.Losses;

/// <summary>How the objective weighs its parts (from the config's `loss` section).</summary>
public sealed record ObjectiveOptions(
    double NextTokenWeight = 0.0,        // weight of L_next-token (all tokens of each document)
    double LambdaInstruction = 1.0,      // λ: weight of L_instruction (response tokens only)
    float LabelSmoothing = 0f,
    float[]? TaskWeights = null,         // fixed or inverse-frequency weights by task id
    Parameter? UncertaintyLogVars = null, // learned task weighting
    float NeftuneAlpha = 0f,             // NEFTune noise on embeddings while training (0 = off)
    Rng? NoiseRng = null,
    double TaskHeadWeight = 0,           // λ_task: the dual head's task-classification loss (model.instruction_aware.task_head_weight)
    double RepresentationAlpha = 0,      // α: the instruction-representation loss (model.instruction_aware.representation_alpha)
    float[]? TemperatureTargets = null,  // τ* by task id (NaN: none) for the temperature head (model.instruction_aware.temperature_targets)
    double TemperatureWeight = 0);       // μ: the temperature head's loss weight

/// <summary>Token counts of a whole optimizer step: every micro-batch's loss is divided by these, not by its own.</summary>
public sealed record StepCounts(int InstructionTokens, double InstructionWeight, int LmTokens, int[] TokensPerTask)
{
    /// <summary>Documents with a task label (the dual head's denominator) and with instruction tokens (the
    /// representation loss's), over the step; 0 when those losses are off.</summary>
    public int TaskDocuments { get; init; }
    public int RepresentationDocuments { get; init; }
    /// <summary>Documents whose task has a target temperature (the temperature head's denominator).</summary>
    public int TemperatureDocuments { get; init; }
}

/// <summary>One micro-batch's contribution: the tensor to backpropagate and the parts' unnormalised sums for logging.</summary>
public sealed record ObjectiveResult(Tensor Loss, double InstructionSum, double LmSum)
{
    /// <summary>Σ of the dual head's CE and of the representation loss's squared errors (logging), 0 when off.</summary>
    public double TaskSum { get; init; }
    public double RepresentationSum { get; init; }
    /// <summary>Σ of the temperature head's squared errors (logging), 0 when off.</summary>
    public double TemperatureSum { get; init; }
}

/// <summary>
/// The training objective L_total = w_nt·L_next-token + λ·L_instruction. L_instruction is cross-entropy over
/// response tokens (labels ≠ −100), optionally weighted by task; L_next-token is cross-entropy over every
/// next token inside each document (what keeps general fluency). Both are means over the tokens of the whole
/// optimizer step — a micro-batch's loss is its sum divided by the step's count — so gradient accumulation
/// gives exactly the gradient of one big batch, however the tokens fall into micro-batches.
/// λ = 0 with w_nt = 1 is plain LM tuning; w_nt = 0 with λ = 1 (the default) is standard SFT.
/// </summary>
public static class InstructionObjective
{
    /// <summary>Position t is scored on labels[t+1] (Hugging Face's shift).</summary>
    public static int[] InstructionTargets(Batch b) => LlamaModel.ShiftedTargets(b.Labels, b.B, b.T);

    /// <summary>Position t is scored on ids[t+1] whenever t+1 is in the same document as t.</summary>
    public static int[] NextTokenTargets(Batch b)
    {
        var targets = new int[b.B * b.T];
        Array.Fill(targets, CrossEntropyKernel.IgnoreIndex);
        for (int r = 0; r < b.B; r++)
            for (int t = 0; t + 1 < b.T; t++)
            {
                int i = r * b.T + t;
                if (b.DocumentIds[i] >= 0 && b.DocumentIds[i + 1] == b.DocumentIds[i]) targets[i] = b.Ids[i + 1];
            }
        return targets;
    }

    /// <summary>The task of each scored target (the task of token t+1), −1 where nothing is scored.</summary>
    public static int[] TaskOfTargets(Batch b, int[] targets)
    {
        var tasks = new int[targets.Length];
        for (int i = 0; i < targets.Length; i++)
            tasks[i] = targets[i] == CrossEntropyKernel.IgnoreIndex ? -1 : b.TaskIds[i + 1];
        return tasks;
    }

    public static StepCounts Count(IReadOnlyList<Batch> microBatches, ObjectiveOptions o, int taskCount)
    {
        int instr = 0, lm = 0, taskDocs = 0, reprDocs = 0, tempDocs = 0;
        double weight = 0;
        var perTask = new int[Math.Max(taskCount, 1)];
        foreach (var b in microBatches)
        {
            var targets = InstructionTargets(b);
            var tasks = TaskOfTargets(b, targets);
            for (int i = 0; i < targets.Length; i++)
            {
                if (targets[i] == CrossEntropyKernel.IgnoreIndex) continue;
                instr++;
                int k = tasks[i];
                if (k >= 0 && k < perTask.Length) perTask[k]++;
                weight += o.TaskWeights != null && k >= 0 && k < o.TaskWeights.Length ? o.TaskWeights[k] : 1.0;
            }
            if (o.NextTokenWeight > 0)
                foreach (var t in NextTokenTargets(b)) if (t != CrossEntropyKernel.IgnoreIndex) lm++;
            if ((o.TaskHeadWeight > 0 || o.RepresentationAlpha > 0 || Temperature(o)) && InstructionSpans.From(ToModelBatch(b)) is { } spans)
            {
                var (task, has) = InstructionHeads.Documents(spans, b.TaskIds);
                taskDocs += task.Count(k => k >= 0 && k < perTask.Length);
                reprDocs += has.Count(h => h);
                if (Temperature(o)) tempDocs += task.Count(k => TemperatureHead.Target(o.TemperatureTargets!, k) != null);
            }
        }
        return new StepCounts(instr, weight, lm, perTask) { TaskDocuments = taskDocs, RepresentationDocuments = reprDocs, TemperatureDocuments = tempDocs };
    }

    private static bool Temperature(ObjectiveOptions o) => o.TemperatureWeight > 0 && o.TemperatureTargets != null;

    public static LlamaBatch ToModelBatch(Batch b) => new(new IntTensor(b.Ids, b.B, b.T))
    {
        PositionIds = new IntTensor(b.PositionIds, b.B, b.T),
        // Document ids alone carry both packing and padding: a real token never attends a pad (doc −1), and a
        // pad row still attends itself, so no softmax row is empty.
        DocumentIds = new IntTensor(b.DocumentIds, b.B, b.T),
        Segments = b.SegmentTensor(),
    };

    /// <summary>Forward of one micro-batch on the current tape; backpropagate <see cref="ObjectiveResult.Loss"/>.</summary>
    public static ObjectiveResult Forward(LlamaModel model, Batch b, StepCounts counts, ObjectiveOptions o,
        bool firstMicroBatch, bool checkpointLayers = false)
    {
        var heads = model.InstructionAware is { } ia && (o.TaskHeadWeight > 0 && ia.TaskHead != null || o.RepresentationAlpha > 0 && ia.RepresentationHead != null
                || Temperature(o) && ia.TemperatureHead != null)
            ? ia : null;
        var modelBatch = ToModelBatch(b);
        var output = model.Forward(modelBatch, new LlamaForwardOptions
        {
            ReturnLogits = true, CheckpointLayers = checkpointLayers, NeftuneAlpha = o.NeftuneAlpha, NoiseRng = o.NoiseRng,
            HiddenOnly = heads != null,   // the heads read the final hidden states; the logits are the LM head's of them
        });
        int V = model.Config.VocabSize, N = b.B * b.T;
        var logits = heads != null ? model.HeadLogits(output.Hidden!) : Ops.Reshape(output.Logits!, N, V);   // (B·T, V)
        Tensor? total = null;
        double instrSum = 0, lmSum = 0;

        if (o.LambdaInstruction != 0 && counts.InstructionTokens > 0)
        {
            var targets = InstructionTargets(b);
            var losses = Ops.CrossEntropyLosses(logits, targets, o.LabelSmoothing, out _);   // (N), 0 where ignored
            instrSum = Sum(losses.Span);
            Tensor term;
            if (o.UncertaintyLogVars != null)
                term = UncertaintyWeighting.Combine(losses, TaskOfTargets(b, targets), o.UncertaintyLogVars, counts.TokensPerTask, firstMicroBatch);
            else if (o.TaskWeights != null)
            {
                var tasks = TaskOfTargets(b, targets);
                var w = new float[N];
                for (int i = 0; i < N; i++) w[i] = tasks[i] >= 0 && tasks[i] < o.TaskWeights.Length ? o.TaskWeights[tasks[i]] : 0f;
                term = Ops.Scale(Ops.Sum(Ops.Mul(losses, Tensor.FromArray(w, N))), (float)(1.0 / counts.InstructionWeight));
            }
            else term = Ops.Scale(Ops.Sum(losses), 1f / counts.InstructionTokens);
            total = Ops.Scale(term, (float)o.LambdaInstruction);
        }
        if (o.NextTokenWeight > 0 && counts.LmTokens > 0)
        {
            var lmLosses = Ops.CrossEntropyLosses(logits, NextTokenTargets(b), o.LabelSmoothing, out _);
            lmSum = Sum(lmLosses.Span);
            var term = Ops.Scale(Ops.Sum(lmLosses), (float)(o.NextTokenWeight / counts.LmTokens));
            total = total == null ? term : Ops.Add(total, term);
        }
        total ??= Ops.Scale(Ops.Sum(logits), 0f);
        if (heads == null) return new ObjectiveResult(total, instrSum, lmSum);
        return InstructionLosses(heads, output.Hidden!, modelBatch, b, counts, o, total, instrSum, lmSum);
    }

    /// <summary>L = (1 − α)·(L_objective + λ·L_task) + α·L_repr (Models/InstructionAware/InstructionHeads.cs), each
    /// part normalised by the step's document counts.</summary>
    private static ObjectiveResult InstructionLosses(Models.InstructionAware.InstructionAwareModule ia, Tensor hidden, LlamaBatch modelBatch,
        Batch b, StepCounts counts, ObjectiveOptions o, Tensor total, double instrSum, double lmSum)
    {
        var spans = InstructionSpans.From(modelBatch)!;
        double taskSum = 0, reprSum = 0, tempSum = 0;
        if (o.TaskHeadWeight > 0 && ia.TaskHead != null && counts.TaskDocuments > 0)
        {
            var (sum, _) = InstructionHeads.TaskLossSum(ia.TaskHead, hidden, spans, b.TaskIds);
            taskSum = sum.Item();
            total = Ops.Add(total, Ops.Scale(sum, (float)(o.TaskHeadWeight / counts.TaskDocuments)));
        }
        if (Temperature(o) && ia.TemperatureHead != null && counts.TemperatureDocuments > 0)
        {
            var (sum, _) = TemperatureHead.LossSum(ia.TemperatureHead, hidden, spans, b.TaskIds, o.TemperatureTargets!);
            tempSum = sum.Item();
            total = Ops.Add(total, Ops.Scale(sum, (float)(o.TemperatureWeight / counts.TemperatureDocuments)));
        }
        if (o.RepresentationAlpha > 0 && ia.RepresentationHead != null && counts.RepresentationDocuments > 0)
        {
            var (sum, _) = InstructionHeads.RepresentationLossSum(ia.RepresentationHead, hidden, spans, b.Ids, ia.RepresentationTable!);
            reprSum = sum.Item();
            double a = o.RepresentationAlpha;
            total = Ops.Add(Ops.Scale(total, (float)(1 - a)), Ops.Scale(sum, (float)(a / ((double)counts.RepresentationDocuments * hidden.Shape[^1]))));
        }
        return new ObjectiveResult(total, instrSum, lmSum) { TaskSum = taskSum, RepresentationSum = reprSum, TemperatureSum = tempSum };
    }

    private static double Sum(ReadOnlySpan<float> x) { double s = 0; foreach (var v in x) s += v; return s; }
}
