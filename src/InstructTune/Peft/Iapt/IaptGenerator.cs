// IAPT's prompt generators (one bottleneck MLP per decoder layer) and their zero-initialised gates. Prepare runs once
// per forward: it pools the instruction, generates every layer's per-example prompts, and the attention layers read
// them through IInstructionPrompts.Layer (LlamaAttention adds gate ⊙ PrefixAttention).
using System.Numerics.Tensors;
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Tensors;
using InstructTune.Models;
using InstructTune.Models.InstructionAware;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Peft.Iapt;

public sealed class IaptGenerator : Module, IInstructionPrompts, IAdapterLayer
{
    private readonly Linear[] _down, _up;
    private readonly Parameter[] _gate;
    private InstructionPrompts?[]? _prompts;
    public int Layers => _down.Length;
    public int P { get; }
    public int KvDim { get; }
    public string Activation { get; }
    public bool Enabled { get; set; } = true;
    /// <summary>How many times <see cref="Prepare"/> generated prompts (one per forward).</summary>
    public int Runs { get; private set; }

    public IaptGenerator(LlamaConfig c, IaptConfig config, Rng rng)
    {
        if (config.NumVirtualTokens < 1) throw new ArgumentException($"num_virtual_tokens must be at least 1, got {config.NumVirtualTokens}");
        if (config.Bottleneck < 1) throw new ArgumentException($"bottleneck must be at least 1, got {config.Bottleneck}");
        if (!IaptConfig.Activations.Contains(config.Activation))
            throw new ArgumentException($"activation '{config.Activation}' is not one of {string.Join(", ", IaptConfig.Activations)}");
        int L = c.NumHiddenLayers, D = c.HiddenSize, m = config.Bottleneck;
        P = config.NumVirtualTokens; KvDim = c.NumKeyValueHeads * c.HeadDim; Activation = config.Activation;
        _down = new Linear[L]; _up = new Linear[L]; _gate = new Parameter[L];
        for (int l = 0; l < L; l++)
        {
            _down[l] = RegisterModule($"down_{l}", new Linear(D, m, bias: true));
            _up[l] = RegisterModule($"up_{l}", new Linear(m, P * 2 * KvDim, bias: true));
            _gate[l] = RegisterParameter($"gate_{l}", new Parameter(c.NumAttentionHeads * c.HeadDim));   // zeros: the base at init
            TorchInit.LinearDefault(_down[l], rng);
            TorchInit.LinearDefault(_up[l], rng);
        }
    }

    public Linear Down(int l) => _down[l];
    public Linear Up(int l) => _up[l];
    public Parameter Gate(int l) => _gate[l];

    public void Prepare(Tensor embeddings, InstructionSpans? spans)
    {
        _prompts = null;
        if (!Enabled) return;
        int N = embeddings.Size(0);
        // r (docs, D): each example's mean instruction embedding; without segments every row is one "example" with r = 0.
        var r = spans != null ? spans.Pooled(embeddings) : Tensor.Zeros([1, embeddings.Size(1)]);
        var docOf = spans != null ? spans.DocumentOf : new int[N];
        int docs = r.Size(0);
        if (docs == 0) return;
        Runs++;
        var keys = new int[docs * P]; var values = new int[docs * P];
        for (int i = 0; i < docs * P; i++) { keys[i] = 2 * i; values[i] = 2 * i + 1; }
        _prompts = new InstructionPrompts?[Layers];
        for (int l = 0; l < Layers; l++)
        {
            var z = _up[l].Forward(Act(_down[l].Forward(r), Activation));   // (docs, P·2·KV·hd)
            var rows = Ops.Reshape(z, docs * P * 2, KvDim);                  // row (d·P + p)·2 + j: j = 0 key, 1 value
            _prompts[l] = new InstructionPrompts(Ops.GatherRows(rows, keys), Ops.GatherRows(rows, values), _gate[l], docOf, P);
        }
    }

    public InstructionPrompts? Layer(int l) => _prompts?[l];

    public static Tensor Act(Tensor x, string activation) => activation switch
    {
        "gelu" => Ops.Gelu(x),
        "silu" => Ops.Silu(x),
        "tanh" => Ops.Tanh(x),
        _ => throw new ArgumentException($"IAPT activation '{activation}'"),
    };

    /// <summary>The same activation in place on a span (the inference path).</summary>
    public static void Act(Span<float> x, string activation)
    {
        switch (activation)
        {
            case "gelu": ActivationKernels.GeluForward(x, x, false); break;
            case "silu": ActivationKernels.SiluForward(x, x); break;
            case "tanh": TensorPrimitives.Tanh(x, x); break;
            default: throw new ArgumentException($"IAPT activation '{activation}'");
        }
    }
}

/// <summary>Attaches the generator (`iapt_generator`) and freezes everything else.</summary>
public static class IaptInjector
{
    public const string ModuleName = "iapt_generator";

    public static IaptGenerator Inject(LlamaModel model, IaptConfig config, ulong seed)
    {
        var generator = new IaptGenerator(model.Config, config, new Rng(seed ^ 0x1A9E7UL));
        foreach (var (_, p) in model.NamedParameters()) p.Frozen = true;
        model.AttachConditioner(ModuleName, generator);
        return generator;
    }
}
