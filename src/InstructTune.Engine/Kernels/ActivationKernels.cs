// Elementwise activations with their backward beside them (backward accumulates: dx += …):
//   SiLU  y = x·σ(x)                          dx += dy·σ(x)·(1 + x·(1−σ(x)))
//   GELU  y = x·Φ(x) (exact, erf)             dx += dy·(Φ(x) + x·φ(x))
//   GELU  y = ½x(1+tanh(√(2/π)(x+0.044715x³)))  (tanh approximation)
//   SwiGLU y = silu(g)⊙u                      dg += dy⊙u·silu'(g), du += dy⊙silu(g)
// All spans have length n; outputs may alias inputs only in forward.
using System.Numerics.Tensors;

namespace InstructTune.Engine.Kernels;

public static unsafe class ActivationKernels
{
    private const double Sqrt2OverPi = 0.7978845608028654, GeluC = 0.044715, InvSqrt2 = 0.7071067811865476, InvSqrt2Pi = 0.3989422804014327;

    public static void SiluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        KernelChecks.Len("SiLU.Forward", "y", y.Length, x.Length);
        Map(x, y, static v => v / (1f + MathF.Exp(-v)));
    }

    public static void SiluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx)
    {
        KernelChecks.Len("SiLU.Backward", "dx", dx.Length, x.Length);
        for (int i = 0; i < x.Length; i++) dx[i] += dy[i] * SiluGrad(x[i]);
    }

    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y, bool tanhApproximation)
    {
        KernelChecks.Len("GELU.Forward", "y", y.Length, x.Length);
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = tanhApproximation
                ? (float)(0.5 * v * (1 + Math.Tanh(Sqrt2OverPi * (v + GeluC * v * v * v))))
                : (float)(0.5 * v * (1 + SpecialFunctions.Erf(v * InvSqrt2)));
        }
    }

    public static void GeluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, bool tanhApproximation)
    {
        KernelChecks.Len("GELU.Backward", "dx", dx.Length, x.Length);
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i], g;
            if (tanhApproximation)
            {
                double t = Math.Tanh(Sqrt2OverPi * (v + GeluC * v * v * v));
                g = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * Sqrt2OverPi * (1 + 3 * GeluC * v * v);
            }
            else g = 0.5 * (1 + SpecialFunctions.Erf(v * InvSqrt2)) + v * InvSqrt2Pi * Math.Exp(-0.5 * v * v);
            dx[i] += (float)(dy[i] * g);
        }
    }

    private const int Block = 1024; // elements per vectorised pass: a few L1-resident temporaries

    /// <summary>y = silu(g) ⊙ u, the Llama MLP gate. Parallel over chunks, vectorised (VectorMath.Sigmoid).</summary>
    public static void SwiGluForward(ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> y)
    {
        KernelChecks.Len("SwiGLU.Forward", "u", u.Length, g.Length);
        KernelChecks.Len("SwiGLU.Forward", "y", y.Length, g.Length);
        int n = g.Length;
        fixed (float* pg = g, pu = u, py = y)
        {
            float* G = pg, U = pu, Y = py;
            Parallel2.For((n + Block - 1) / Block, 20L * Block, (s, e) =>
            {
                Span<float> t = stackalloc float[Block];
                for (int blk = s; blk < e; blk++)
                {
                    int o = blk * Block, m = Math.Min(Block, n - o);
                    var gs = new ReadOnlySpan<float>(G + o, m); var tt = t[..m];
                    VectorMath.Sigmoid(gs, tt);
                    TensorPrimitives.Multiply(tt, gs, tt);                                  // silu(g)
                    TensorPrimitives.Multiply(tt, new ReadOnlySpan<float>(U + o, m), new Span<float>(Y + o, m));
                }
            });
        }
    }

    /// <summary>dg += dy⊙u⊙silu'(g) with silu'(g) = σ(g)(1 + g(1 − σ(g))), du += dy⊙silu(g).</summary>
    public static void SwiGluBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> dg, Span<float> du)
    {
        int n = g.Length;
        KernelChecks.Len("SwiGLU.Backward", "dy", dy.Length, n);
        KernelChecks.Len("SwiGLU.Backward", "dg", dg.Length, n);
        KernelChecks.Len("SwiGLU.Backward", "du", du.Length, n);
        fixed (float* pdy = dy, pg = g, pu = u, pdg = dg, pdu = du)
        {
            float* DY = pdy, G = pg, U = pu, DG = pdg, DU = pdu;
            Parallel2.For((n + Block - 1) / Block, 30L * Block, (s, e) =>
            {
                Span<float> sig = stackalloc float[Block], t = stackalloc float[Block];
                for (int blk = s; blk < e; blk++)
                {
                    int o = blk * Block, m = Math.Min(Block, n - o);
                    var gs = new ReadOnlySpan<float>(G + o, m); var dys = new ReadOnlySpan<float>(DY + o, m);
                    var sg = sig[..m]; var tt = t[..m];
                    var dus = new Span<float>(DU + o, m); var dgs = new Span<float>(DG + o, m);
                    VectorMath.Sigmoid(gs, sg);
                    TensorPrimitives.Multiply(sg, gs, tt);                                  // silu(g)
                    TensorPrimitives.MultiplyAdd(dys, tt, dus, dus);                        // du += dy⊙silu(g)
                    TensorPrimitives.Subtract(1f, sg, tt);                                  // 1 − σ
                    TensorPrimitives.MultiplyAdd(tt, gs, 1f, tt);                           // 1 + g(1 − σ)
                    TensorPrimitives.Multiply(tt, sg, tt);                                  // silu'(g)
                    TensorPrimitives.Multiply(tt, new ReadOnlySpan<float>(U + o, m), tt);   // u⊙silu'(g)
                    TensorPrimitives.MultiplyAdd(dys, tt, dgs, dgs);                        // dg += dy⊙u⊙silu'(g)
                }
            });
        }
    }

    public static void SwiGluForwardNaive(ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> y)
    {
        for (int i = 0; i < g.Length; i++) y[i] = (float)(g[i] / (1 + Math.Exp(-(double)g[i])) * u[i]);
    }

    public static void SwiGluBackwardNaive(ReadOnlySpan<float> dy, ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> dg, Span<float> du)
    {
        for (int i = 0; i < g.Length; i++)
        {
            double s = 1 / (1 + Math.Exp(-(double)g[i]));
            du[i] += (float)(dy[i] * g[i] * s);
            dg[i] += (float)(dy[i] * u[i] * s * (1 + g[i] * (1 - s)));
        }
    }

    public static void SiluForwardNaive(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = (float)(x[i] / (1 + Math.Exp(-(double)x[i])));
    }

    private static float SiluGrad(float v)
    {
        float s = 1f / (1f + MathF.Exp(-v));
        return s * (1f + v * (1f - s));
    }

    private static void Map(ReadOnlySpan<float> x, Span<float> y, Func<float, float> f)
    {
        for (int i = 0; i < x.Length; i++) y[i] = f(x[i]);
    }
}
