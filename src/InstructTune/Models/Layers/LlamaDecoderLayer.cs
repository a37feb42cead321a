// One pre-norm decoder block (module "model.layers.N"):
//   x = x + self_attn(input_layernorm(x));  x = x + mlp(post_attention_layernorm(x))
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;

namespace InstructTune.Models.Layers;

public sealed class LlamaDecoderLayer : Module
{
    public LlamaDecoderLayer(LlamaConfig c)
    {
        RegisterModule("input_layernorm", new RmsNorm(c.HiddenSize, (float)c.RmsNormEps));
        RegisterModule("self_attn", new LlamaAttention(c));
        RegisterModule("post_attention_layernorm", new RmsNorm(c.HiddenSize, (float)c.RmsNormEps));
        RegisterModule("mlp", new LlamaMlp(c));
    }

    public RmsNorm InputLayerNorm => (RmsNorm)Child("input_layernorm");
    public LlamaAttention SelfAttn => (LlamaAttention)Child("self_attn");
    public RmsNorm PostAttentionLayerNorm => (RmsNorm)Child("post_attention_layernorm");
    public IUnaryModule Mlp => Unary("mlp");

    /// <summary>x (B·T, hidden) → (B·T, hidden).</summary>
    public Tensor Forward(Tensor x, LlamaLayerContext ctx)
    {
        x = Ops.Add(x, SelfAttn.Forward(InputLayerNorm.Forward(x), ctx));
        return Ops.Add(x, Mlp.Forward(PostAttentionLayerNorm.Forward(x)));
    }
}
