// Row softmax over the last dimension, subtracting the row max first (TensorPrimitives.SoftMax does not):
//   y[n] = exp(x[n] − max x[n]) / Σ exp(x[n] − max x[n]);  backward dx += y ⊙ (dy − Σ dy⊙y).
// x, y (N, C); y may alias x in forward.
using System.Numerics.Tensors;

namespace InstructTune.Engine.Kernels;

public static class SoftmaxKernel
{
    public static void Forward(ReadOnlySpan<float> x, Span<float> y, int N, int C)
    {
        KernelChecks.Len("Softmax.Forward", "x", x.Length, (long)N * C);
        KernelChecks.Len("Softmax.Forward", "y", y.Length, (long)N * C);
        for (int n = 0; n < N; n++)
        {
            var yr = y.Slice(n * C, C);
            float m = TensorPrimitives.Max(x.Slice(n * C, C));
            TensorPrimitives.Subtract(x.Slice(n * C, C), m, yr);
            VectorMath.Exp(yr, yr);
            TensorPrimitives.Divide(yr, TensorPrimitives.Sum(yr), yr);
        }
    }

    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, Span<float> dx, int N, int C)
    {
        KernelChecks.Len("Softmax.Backward", "dx", dx.Length, (long)N * C);
        for (int n = 0; n < N; n++)
        {
            var yr = y.Slice(n * C, C); var dyr = dy.Slice(n * C, C);
            float dot = TensorPrimitives.Dot(dyr, yr);
            for (int c = 0; c < C; c++) dx[n * C + c] += yr[c] * (dyr[c] - dot);
        }
    }

    public static void ForwardNaive(ReadOnlySpan<float> x, Span<float> y, int N, int C)
    {
        for (int n = 0; n < N; n++)
        {
            double m = double.NegativeInfinity, s = 0;
            for (int c = 0; c < C; c++) m = Math.Max(m, x[n * C + c]);
            for (int c = 0; c < C; c++) s += Math.Exp(x[n * C + c] - m);
            for (int c = 0; c < C; c++) y[n * C + c] = (float)(Math.Exp(x[n * C + c] - m) / s);
        }
    }

    public static void BackwardNaive(ReadOnlySpan<float> dy, ReadOnlySpan<float> y, Span<float> dx, int N, int C)
    {
        for (int n = 0; n < N; n++)
        {
            double dot = 0;
            for (int c = 0; c < C; c++) dot += (double)dy[n * C + c] * y[n * C + c];
            for (int c = 0; c < C; c++) dx[n * C + c] += (float)(y[n * C + c] * (dy[n * C + c] - dot));
        }
    }

    /// <summary>
    /// Log-softmax of one row of logits (C) into double: dst[c] = x[c] − (max + log Σ exp(x − max)), the normaliser
    /// summed in double (scoring reads per-token log-probabilities of long continuations; float would lose the small
    /// ones). The inference scorer's kernel.
    /// </summary>
    public static void LogSoftmaxRow(ReadOnlySpan<float> x, Span<double> dst)
    {
        KernelChecks.Len("Softmax.LogSoftmaxRow", "dst", dst.Length, x.Length);
        float max = TensorPrimitives.Max(x);
        double sum = 0;
        for (int i = 0; i < x.Length; i++) sum += Math.Exp(x[i] - max);
        double lse = max + Math.Log(sum);
        for (int i = 0; i < x.Length; i++) dst[i] = x[i] - lse;
    }
}
