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
