// Llama SwiGLU MLP (module "mlp"): down_proj(silu(gate_proj(x)) ⊙ up_proj(x)).
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;

namespace InstructTune.Models.Layers;

public sealed class LlamaMlp : Module, IUnaryModule
{
    public LlamaMlp(LlamaConfig c)
    {
        RegisterModule("gate_proj", new Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias));
        RegisterModule("up_proj", new Linear(c.HiddenSize, c.IntermediateSize, c.MlpBias));
        RegisterModule("down_proj", new Linear(c.IntermediateSize, c.HiddenSize, c.MlpBias));
    }

    public IUnaryModule GateProj => Unary("gate_proj");
    public IUnaryModule UpProj => Unary("up_proj");
    public IUnaryModule DownProj => Unary("down_proj");

    /// <summary>x (B·T, hidden) → (B·T, hidden).</summary>
    public Tensor Forward(Tensor x) => DownProj.Forward(Ops.SwiGlu(GateProj.Forward(x), UpProj.Forward(x))); // (B·T, ffn) inside
}
