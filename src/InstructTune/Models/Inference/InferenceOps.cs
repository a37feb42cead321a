// Small fused kernels of the inference path (no autograd): RMSNorm, rotary embedding, SwiGLU, log-softmax.
// Shapes: rows of width D (hidden) or hd (head dim); all spans are float32; outputs may alias inputs where noted.
using System.Numerics.Tensors;
using InstructTune.Engine.Kernels;

namespace InstructTune.Models.Inference;

public static class InferenceOps
{
    /// <summary>y = w ⊙ x / sqrt(mean(x²) + eps) per row of width D, accumulating in float32 as HF does.
    /// y may alias x.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps, Span<float> y, int rows, int D)
    {
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * D, D);
            float ms = TensorPrimitives.SumOfSquares(xr) / D;
            float inv = 1f / MathF.Sqrt(ms + eps);
            var yr = y.Slice(r * D, D);
            TensorPrimitives.Multiply(xr, inv, yr);
            TensorPrimitives.Multiply(yr, w, yr);
        }
    }

    /// <summary>Rotary embedding in the half-split (rotate_half) layout, in place on nHeads heads of width hd:
    /// x' = x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁]; cos/sin hold hd/2 values for this position.</summary>
    public static void Rope(Span<float> x, int nHeads, int hd, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int h2 = hd / 2;
        for (int h = 0; h < nHeads; h++)
        {
            var v = x.Slice(h * hd, hd);
            for (int i = 0; i < h2; i++)
            {
                float a = v[i], b = v[i + h2];
                v[i] = a * cos[i] - b * sin[i];
                v[i + h2] = b * cos[i] + a * sin[i];
            }
        }
    }

    /// <summary>g ← silu(g) ⊙ u (the SwiGLU gate), elementwise and vectorised. One thread on purpose: decode
    /// rows are a few thousand values, and prefill's share is small next to the GEMMs.</summary>
    public static void SwiGlu(Span<float> g, ReadOnlySpan<float> u) => VectorMath.SwiGlu(g, u[..g.Length], g);

    /// <summary>log softmax of one row, in double for the normaliser (subtracting the row max).</summary>
    public static void LogSoftmax(ReadOnlySpan<float> logits, Span<double> dst)
    {
        float max = TensorPrimitives.Max(logits);
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += Math.Exp(logits[i] - max);
        double lse = max + Math.Log(sum);
        for (int i = 0; i < logits.Length; i++) dst[i] = logits[i] - lse;
    }
}
