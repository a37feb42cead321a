// Embedding lookup and its scatter-add backward.
//   W (V, C) table, ids (N) in [0, V), out (N, C);  backward: dW[ids[n]] += dout[n].
using System.Numerics.Tensors;

namespace InstructTune.Engine.Kernels;

public static class EmbeddingKernel
{
    /// <summary>out[n, :] = W[ids[n], :]. Throws ArgumentOutOfRangeException naming the position of a bad id.</summary>
    public static void Forward(ReadOnlySpan<float> W, ReadOnlySpan<int> ids, Span<float> output, int V, int C)
    {
        Check(W.Length, ids, output.Length, V, C, "Embedding.Forward");
        for (int n = 0; n < ids.Length; n++)
            W.Slice(ids[n] * C, C).CopyTo(output.Slice(n * C, C));
    }

    /// <summary>dW[ids[n], :] += dout[n, :] (repeated ids accumulate; serial so repeats never race).</summary>
    public static void Backward(Span<float> dW, ReadOnlySpan<int> ids, ReadOnlySpan<float> dout, int V, int C)
    {
        Check(dW.Length, ids, dout.Length, V, C, "Embedding.Backward");
        for (int n = 0; n < ids.Length; n++)
        {
            var row = dW.Slice(ids[n] * C, C);
            TensorPrimitives.Add(row, dout.Slice(n * C, C), row);
        }
    }

    public static void ForwardNaive(ReadOnlySpan<float> W, ReadOnlySpan<int> ids, Span<float> output, int V, int C)
    {
        for (int n = 0; n < ids.Length; n++)
            for (int c = 0; c < C; c++) output[n * C + c] = W[ids[n] * C + c];
    }

    public static void BackwardNaive(Span<float> dW, ReadOnlySpan<int> ids, ReadOnlySpan<float> dout, int V, int C)
    {
        for (int n = 0; n < ids.Length; n++)
            for (int c = 0; c < C; c++) dW[ids[n] * C + c] += dout[n * C + c];
    }

    private static void Check(int wLen, ReadOnlySpan<int> ids, int outLen, int V, int C, string kernel)
    {
        KernelChecks.Len(kernel, "W", wLen, (long)V * C);
        KernelChecks.Len(kernel, "out", outLen, (long)ids.Length * C);
        for (int n = 0; n < ids.Length; n++)
            if ((uint)ids[n] >= (uint)V)
                throw new ArgumentOutOfRangeException(nameof(ids), $"{kernel}: token id {ids[n]} at position {n} is outside the vocabulary [0, {V})");
    }
}
