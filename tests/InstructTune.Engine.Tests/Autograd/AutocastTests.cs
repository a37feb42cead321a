using InstructTune.Engine.Autograd;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Tensors;
using static InstructTune.Engine.Tests.GemmTestSupport;

namespace InstructTune.Engine.Tests.Autograd;

/// <summary>Mixed precision: inside an Autocast bf16 scope, Linear's forward, dX and dW products (and MatMul's)
/// equal the float32 products of the bf16-rounded operands (the definition of autocast's bf16 matmul); float32
/// tensors, gradients included, are never rounded; outside the scope everything is float32 again. Both bf16
/// backends (managed forced, oneDNN where it loads) are covered through Gemm.Bf16Backend.</summary>
public class AutocastTests
{
    private static float R(float v) => BFloat16.ToFloat(BFloat16.FromFloat(v));

    private static float[] Naive(bool ta, bool tb, int M, int N, int K, float[] a, float[] b)
    {
        var c = new float[M * N];
        Gemm.SgemmNaive(ta, tb, M, N, K, 1f, a.Select(R).ToArray(), ta ? M : K, b.Select(R).ToArray(), tb ? K : N, 0f, c, N);
        return c;
    }

    private static void Close(float[] expected, ReadOnlySpan<float> actual, int K, string what)
    {
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 4e-7f * (K + 8) + 1e-6f, $"{what}[{i}]: {actual[i]} vs {expected[i]}");
    }

    [Fact]
    public void LinearForwardAndBackwardUseBf16OperandsInsideTheScopeOnly()
    {
        const int M = 37, K = 70, N = 45;
        var saved = Gemm.Bf16Backend;
        try
        {
            foreach (var backend in Native.OneDnn.IsAvailable ? new[] { Bf16GemmBackend.Managed, Bf16GemmBackend.OneDnn } : [Bf16GemmBackend.Managed])
            {
                Gemm.Bf16Backend = backend;
                var xs = Random(M * K, 1); var ws = Random(N * K, 2); var dys = Random(M * N, 3);
                var x = Tensor.FromArray((float[])xs.Clone(), M, K); x.RequiresGrad = true;
                var W = Tensor.FromArray((float[])ws.Clone(), N, K); W.RequiresGrad = true;
                float[] y;
                using (var tape = Tape.Record())
                {
                    Tensor yt;
                    using (Autocast.Enter(true))
                    {
                        Assert.True(Autocast.Bf16);
                        yt = Ops.Linear(x, W);
                    }
                    Assert.False(Autocast.Bf16);
                    y = yt.Span.ToArray();
                    // Backward runs outside the scope: the node still computes in the precision of its forward.
                    var loss = Ops.Sum(Ops.Mul(yt, Tensor.FromArray(dys, M, N)));
                    tape.Backward(loss);
                }
                Close(Naive(false, true, M, N, K, xs, ws), y, K, $"{backend} y");
                Close(Naive(false, false, M, K, N, dys, ws), x.Grad!.Span, N, $"{backend} dx");
                Close(Naive(true, false, N, K, M, dys, xs), W.Grad!.Span, M, $"{backend} dW");
                // The masters are untouched and the result is not the float32 one.
                Assert.Equal(xs, x.Span.ToArray());
                var f32 = new float[M * N];
                Gemm.SgemmNaive(false, true, M, N, K, 1f, xs, K, ws, K, 0f, f32, N);
                Assert.True(f32.Zip(y).Max(p => Math.Abs(p.First - p.Second)) > 1e-4, $"{backend}: bf16 scope gave float32 numbers");
                // Outside the scope: float32.
                var y32 = Ops.Linear(x, W);
                Close(f32, y32.Span, K, $"{backend} float32 y");
            }
        }
        finally { Gemm.Bf16Backend = saved; }
    }

    [Fact]
    public void MatMulUsesBf16OperandsInsideTheScope()
    {
        const int M = 20, K = 33, N = 17;
        var a = Random(M * K, 4); var b = Random(K * N, 5);
        Tensor y;
        using (Autocast.Enter(true)) y = Ops.MatMul(Tensor.FromArray(a, M, K), Tensor.FromArray(b, K, N));
        Close(Naive(false, false, M, N, K, a, b), y.Span, K, "matmul");
        using (Autocast.Enter(false)) Assert.False(Autocast.Bf16);
    }
}
