// The inference model's linear products on its WeightMatrix storage: pins the storage (arrays; a mapping needs
// nothing) and runs the engine's kernel, Engine/Kernels/LinearKernel.cs (decode GEMV tiles for float32/bf16,
// Q8Gemv for q8_0, the packed GEMM for prompts). No arithmetic lives here.
using InstructTune.Engine.Kernels;

namespace InstructTune.Models.Inference;

public static class InferenceLinear
{
    /// <summary>Y[T, O] = X[T, K]·Wᵀ (+ bias); bf16 compute for prompts when <see cref="WeightMatrix.ComputeBf16"/>.</summary>
    public static void Forward(ReadOnlySpan<float> X, WeightMatrix W, ReadOnlySpan<float> bias, Span<float> Y, int T)
    {
        using var pin = W.Pin();
        LinearKernel.Forward(X, pin.View, bias, Y, T, W.ComputeBf16 && !W.IsQ8 && T >= LinearKernel.GemmMinTokens ? W.Bf16Operand : default);
    }

    /// <summary>Several products of the same input X [T, K] (q/k/v, or gate/up) in one parallel region for decode;
    /// each output is [T, W.Rows].</summary>
    public static void ForwardMany(float[] X, int T, params (WeightMatrix W, float[]? Bias, float[] Y)[] products)
    {
        if (T >= LinearKernel.GemmMinTokens)
        {
            foreach (var (w, b, y) in products) Forward(X, w, b, y, T);
            return;
        }
        var pins = new WeightMatrix.Pinned[products.Length];
        try
        {
            var views = new (WeightView W, float[]? Bias, float[] Y)[products.Length];
            for (int i = 0; i < products.Length; i++)
            {
                pins[i] = products[i].W.Pin();
                views[i] = (pins[i].View, products[i].Bias, products[i].Y);
            }
            LinearKernel.ForwardMany(X, T, views);
        }
        finally { foreach (var p in pins) p.Dispose(); }
    }

    /// <summary>The definition in double precision (the engine's naive twin on this storage): the test oracle.</summary>
    public static void ForwardNaive(ReadOnlySpan<float> X, WeightMatrix W, ReadOnlySpan<float> bias, Span<float> Y, int T)
    {
        using var pin = W.Pin();
        LinearKernel.ForwardNaive(X, pin.View, bias, Y, T);
    }
}
