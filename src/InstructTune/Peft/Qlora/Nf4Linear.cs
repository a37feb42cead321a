using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Modules;
using InstructTune.Engine.Quantization;
using InstructTune.Engine.Tensors;
using Tensor = InstructTune.Engine.Tensors.Tensor;

namespace InstructTune.Peft.Qlora;

/// <summary>
/// A frozen linear layer whose weight W (out, in) is stored in NF4 (blocks of 64, double-quantised scales):
/// y = x·Wᵀ + b with W dequantised block by block inside the GEMM's packing, and dx = dy·W in backward the same
/// way. W never receives a gradient — QLoRA trains only the LoRA matrices on top.
/// </summary>
public sealed class Nf4Linear : Module, IFrozenLinear
{
    public Nf4Matrix Weight { get; }
    public Parameter? Bias { get; }
    public int InFeatures => Weight.Cols;
    public int OutFeatures => Weight.Rows;

    public Nf4Linear(Linear source)
    {
        Weight = Nf4Matrix.Quantize(source.Weight.Span, source.OutFeatures, source.InFeatures);
        Bias = source.Bias;
        if (Bias != null) { Bias.Frozen = true; RegisterParameter("bias", Bias); } else RegisterAbsentParameter("bias");
    }

    /// <summary>Bytes held by the frozen weight (codes + quantised scales + their scales).</summary>
    public long WeightBytes => Weight.StorageBytes;

    public Tensor Forward(Tensor x) => Forward(x, withBias: true);

    /// <summary>y = x·Wᵀ (+ b when withBias; DoRA needs the product alone).</summary>
    public Tensor Forward(Tensor x, bool withBias) =>
        FrozenLinearOps.Forward("Nf4Linear", x, withBias ? Bias : null, InFeatures, OutFeatures,
            (transB, M, N, K, A, lda, beta, C, ldc) => Gemm.SgemmNf4B(false, transB, M, N, K, 1f, A, lda, Weight, beta, C, ldc));

    /// <summary>The dequantised weight (out, in), e.g. to merge an adapter into a full-precision checkpoint.</summary>
    public float[] Dequantize()
    {
        var w = new float[(long)OutFeatures * InFeatures];
        Weight.Dequantize(w);
        return w;
    }
}
