// A frozen linear layer whose weight W (out, in) is held as bfloat16 bits: y = x·Wᵀ + b with W widened to float32
// inside the GEMM's packing (Gemm.SgemmBf16B, the kernel the bf16 inference path uses), and dx = dy·W in backward
// the same way. W never receives a gradient: `model.weight_storage: bfloat16` stores the frozen base weights of a
// LoRA/QLoRA/IA3/prompt-tuning run this way (half the bytes of float32); what trains stays float32.
using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Modules;

/// <summary>A linear layer whose weight is frozen in a compressed storage (NF4 for QLoRA, bf16): forward with or
/// without the bias, the weight widened back to float32, and the bytes it holds.</summary>
public interface IFrozenLinear : IUnaryModule
{
    int InFeatures { get; }
    int OutFeatures { get; }
    Parameter? Bias { get; }
    /// <summary>y = x·Wᵀ (+ b when withBias).</summary>
    Tensor Forward(Tensor x, bool withBias);
    /// <summary>W (out, in) as float32.</summary>
    float[] Dequantize();
    /// <summary>Bytes held by the frozen weight.</summary>
    long WeightBytes { get; }
}

public sealed class Bf16Linear : Module, IFrozenLinear
{
    private readonly ushort[] _w;   // (out, in) row-major, bf16 bits
    public Parameter? Bias { get; }
    public int InFeatures { get; }
    public int OutFeatures { get; }

    /// <summary>Rounds the source's weight to bf16 (nearest even, as torch's .to(bfloat16)); its bias stays float32 and frozen.</summary>
    public Bf16Linear(Linear source)
    {
        InFeatures = source.InFeatures; OutFeatures = source.OutFeatures;
        _w = new ushort[(long)OutFeatures * InFeatures];
        BFloat16.FromFloat(source.Weight.Span, _w);
        Bias = source.Bias;
        if (Bias != null) { Bias.Frozen = true; RegisterParameter("bias", Bias); } else RegisterAbsentParameter("bias");
    }

    public long WeightBytes => (long)_w.Length * sizeof(ushort);

    public Tensor Forward(Tensor x) => Forward(x, withBias: true);

    public Tensor Forward(Tensor x, bool withBias) =>
        FrozenLinearOps.Forward("Bf16Linear", x, withBias ? Bias : null, InFeatures, OutFeatures,
            (transB, M, N, K, A, lda, beta, C, ldc) => Gemm.SgemmBf16B(false, transB, M, N, K, 1f, A, lda, _w, InFeatures, beta, C, ldc));

    public float[] Dequantize()
    {
        var w = new float[_w.Length];
        BFloat16.ToFloat(_w, w);
        return w;
    }
}

/// <summary>The forward/backward pair of a frozen linear layer over any GEMM with a compressed B operand.</summary>
public static class FrozenLinearOps
{
    /// <summary>C[M,N] = op(A)·op(W) + beta·C with W the layer's (out, in) weight: transB for y = x·Wᵀ, not for dx = dy·W.</summary>
    public delegate void WeightGemm(bool transB, int M, int N, int K, ReadOnlySpan<float> A, int lda, float beta, Span<float> C, int ldc);

    /// <summary>y = x·Wᵀ (+ bias) for x (…, in) → (…, out); backward adds dy·W to dx (W itself gets no gradient).</summary>
    public static Tensor Forward(string layer, Tensor x, Parameter? bias, int inFeatures, int outFeatures, WeightGemm gemm)
    {
        if (x.Size(-1) != inFeatures)
            throw new ArgumentException($"{layer}: input {Tensor.ShapeString(x.Shape)} does not match weight [{outFeatures}×{inFeatures}]");
        x = Ops.Contiguous(x);
        int K = inFeatures, N = outFeatures, M = x.Length / Math.Max(1, K);
        var shape = (int[])x.Shape.Clone(); shape[^1] = N;
        var y = Tensor.Empty(shape);
        if (bias != null) for (int m = 0; m < M; m++) bias.Span.CopyTo(y.Span.Slice(m * N, N));
        gemm(true, M, N, K, x.Span, K, bias != null ? 1f : 0f, y.Span, N);          // y (M,N) = x (M,K) · Wᵀ
        if (Tape.Needs(x))
            Tape.Add(y, () => gemm(false, M, K, N, y.Grad!.Span, N, 1f, x.EnsureGrad().Span, K));   // dx (M,K) += dy (M,N) · W (N,K)
        return y;
    }
}
