// The instruction losses, heads over the model's internal instruction representation
//   p_d = pooled final hidden states (after the final RMSNorm) over document d's instruction tokens (spans.Pooled)
// Both are off by default; their weights are recipe keys (model.instruction_aware.task_head_weight,
// representation_alpha) read by Training/Losses/InstructionObjective.
//
// Dual head (task_head_weight λ > 0): a task/intent classifier over p_d, trained on the dataset's task labels
//   instruction_aware.task_head.weight (tasks, D) zero, .bias (tasks) zero
//   L_task = mean over the step's documents with a task of CE(W p_d + b, task_d);  L = L_objective + λ·L_task
//   (L_objective = today's next_token_weight·L_next + lambda_instruction·L_response)
// Instruction representation (representation_alpha α in (0, 1)): the model's representation, projected, is pulled
// toward a frozen encoding of the instruction
//   instruction_aware.representation_head.weight (D, D) zero, .bias (D) zero
//   e_d = mean of the frozen token-embedding rows of d's instruction tokens (a float32 copy of the table taken when
//         the variants are attached, i.e. at the start of training: a fixed bag-of-embeddings instruction encoder)
//   L_repr = mean over the step's documents with instruction tokens and over D of (W_r p_d + b_r − e_d)²
//   L = (1 − α)·(L_objective + λ·L_task) + α·L_repr
// Both losses are sums over a micro-batch divided by the whole optimizer step's document counts (StepCounts), so
// gradient accumulation gives the gradient of one big batch, as for the token losses.
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;

namespace InstructTune.Models.InstructionAware;

/// <summary>A linear head (module with "weight" (out, in) and "bias" (out)), zero at init.</summary>
public sealed class LinearHead : Module
{
    public Parameter Weight { get; }
    public Parameter Bias { get; }
    public LinearHead(int outputs, int inputs)
    {
        Weight = RegisterParameter("weight", new Parameter(outputs, inputs));
        Bias = RegisterParameter("bias", new Parameter(outputs));
    }
    public Tensor Forward(Tensor x) => Ops.Linear(x, Weight, Bias);
}

public static class InstructionHeads
{
    public const string TaskHeadName = "task_head", RepresentationHeadName = "representation_head";

    /// <summary>The task of each document (its last token's task id; −1 none) and whether it has instruction tokens.</summary>
    public static (int[] Task, bool[] HasInstruction) Documents(InstructionSpans spans, ReadOnlySpan<int> taskIds)
    {
        int n = spans.LastRow.Length;
        var task = new int[n];
        var has = new bool[n];
        for (int d = 0; d < n; d++) task[d] = taskIds[spans.LastRow[d]];
        for (int i = 0; i < spans.Select.Length; i++) if (spans.Select[i] != 0) has[spans.DocumentOf[i]] = true;
        return (task, has);
    }

    /// <summary>Σ over documents with a task in [0, classes) of CE(head(p_d), task_d), and how many there were.
    /// hidden (B·T, D).</summary>
    public static (Tensor Sum, int Count) TaskLossSum(LinearHead head, Tensor hidden, InstructionSpans spans, ReadOnlySpan<int> taskIds)
    {
        var pooled = spans.Pooled(hidden);                          // (documents, D)
        var logits = head.Forward(pooled);                          // (documents, tasks)
        var (task, _) = Documents(spans, taskIds);
        int classes = head.Weight.Shape[0];
        var targets = task.Select(k => k >= 0 && k < classes ? k : CrossEntropyKernel.IgnoreIndex).ToArray();
        var sum = Ops.CrossEntropySum(logits, targets, out int count);
        return (sum, count);
    }

    /// <summary>Σ over documents with instruction tokens and over D of (head(p_d) − e_d)², e_d the mean of the
    /// frozen embedding rows (table (V, D)) of d's instruction tokens; and how many documents there were.</summary>
    public static (Tensor Sum, int Count) RepresentationLossSum(LinearHead head, Tensor hidden, InstructionSpans spans,
        ReadOnlySpan<int> ids, ReadOnlySpan<float> table)
    {
        int D = hidden.Shape[^1], n = spans.LastRow.Length;
        var e = new float[n * D];                                   // (documents, D): the frozen encoding, a constant
        var tokens = new int[n];
        for (int i = 0; i < spans.Select.Length; i++)
        {
            if (spans.Select[i] == 0) continue;
            int d = spans.DocumentOf[i];
            System.Numerics.Tensors.TensorPrimitives.Add(e.AsSpan(d * D, D), table.Slice(ids[i] * D, D), e.AsSpan(d * D, D));
            tokens[d]++;
        }
        var mask = new float[n];
        int count = 0;
        for (int d = 0; d < n; d++)
        {
            if (tokens[d] == 0) continue;
            System.Numerics.Tensors.TensorPrimitives.Divide(e.AsSpan(d * D, D), tokens[d], e.AsSpan(d * D, D));
            System.Numerics.Tensors.TensorPrimitives.Negate(e.AsSpan(d * D, D), e.AsSpan(d * D, D));
            mask[d] = 1; count++;
        }
        var r = head.Forward(spans.Pooled(hidden));                 // (documents, D)
        var diff = Ops.Add(r, Tensor.FromArray(e, n, D));           // r − e
        var sq = Ops.MulRows(Ops.Mul(diff, diff), Tensor.FromArray(mask, n));
        return (Ops.Sum(sq), count);
    }
}
