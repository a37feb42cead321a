// A module that reads the instruction once per forward, before the decoder layers (iPEFT's gate head): LlamaModel
// hands it the token embeddings of the frozen base and the batch's instruction spans, and the adapter layers read
// what it computed.
using InstructTune.Engine.Tensors;
using InstructTune.Models.InstructionAware;

namespace InstructTune.Models;

public interface IInstructionConditioner
{
    /// <summary>Called once per forward with the token embeddings x0 (B·T, hidden) and the spans (null when the
    /// batch carries no segments: then no token is an instruction token).</summary>
    void Prepare(Tensor embeddings, InstructionSpans? spans);
}

/// <summary>IAPT's per-layer output: per-document prompt keys/values (docs·P, kvHeads·hd) and a gate (heads·hd) on
/// their attention term; <see cref="DocOf"/> maps each token row of the batch to its document (−1 = none).</summary>
public sealed record InstructionPrompts(Tensor K, Tensor V, Tensor Gate, int[] DocOf, int P);

/// <summary>A conditioner that generates soft prompts per example and per decoder layer (IAPT): every layer's
/// attention adds gate ⊙ (attention of each token over its own example's prompts).</summary>
public interface IInstructionPrompts : IInstructionConditioner
{
    /// <summary>Layer l's prompts of the current forward, or null (disabled, or no forward yet).</summary>
    InstructionPrompts? Layer(int l);
}

/// <summary>A conditioner that rewrites the batch before the forward (HINT): it takes each example's instruction out
/// of its row, encodes the batch's distinct instructions once, and returns the batch the decoder then runs and, per
/// token of the input batch (b·T + t), its row in that batch (−1: taken out; its logits are 0), or null = unchanged.</summary>
public interface ITaskConditioner : IInstructionPrompts
{
    (LlamaBatch Batch, int[]? Rows) Begin(LlamaModel model, LlamaBatch batch);
}
