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
public sealed class Nf4Linear : Module, IUnaryModule
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
    public Tensor Forward(Tensor x, bool withBias)
    {
        if (x.Size(-1) != InFeatures)
            throw new ArgumentException($"Nf4Linear: input {Tensor.ShapeString(x.Shape)} does not match weight [{OutFeatures}×{InFeatures}]");
        x = Ops.Contiguous(x);
        int K = InFeatures, N = OutFeatures, M = x.Length / Math.Max(1, K);
        var shape = (int[])x.Shape.Clone(); shape[^1] = N;
        var y = Tensor.Empty(shape);
        bool addBias = withBias && Bias != null;
        if (addBias) for (int m = 0; m < M; m++) Bias!.Span.CopyTo(y.Span.Slice(m * N, N));
        Gemm.SgemmNf4B(false, true, M, N, K, 1f, x.Span, K, Weight, addBias ? 1f : 0f, y.Span, N);
        if (Tape.Needs(x))
            Tape.Add(y, () =>
            {
                // y = x·Wᵀ  ⇒  dx (M,K) += dy (M,N) · W (N,K)
                Gemm.SgemmNf4B(false, false, M, K, N, 1f, y.Grad!.Span, N, Weight, 1f, x.EnsureGrad().Span, K);
            });
        return y;
    }

    /// <summary>The dequantised weight (out, in), e.g. to merge an adapter into a full-precision checkpoint.</summary>
    public float[] Dequantize()
    {
        var w = new float[(long)OutFeatures * InFeatures];
        Weight.Dequantize(w);
        return w;
    }
}
