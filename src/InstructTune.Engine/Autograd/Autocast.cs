// Mixed precision as PyTorch's CPU autocast does it: inside a bf16 scope, the matrix products of Ops.Linear and
// Ops.MatMul (forward and the dX/dW products of their backward) round their float32 operands to bf16 and
// accumulate in float32 (Gemm.SgemmAsBf16: oneDNN's bf16 dot products where the CPU has them). Everything else —
// norms, softmax, attention, RoPE, losses, gradients as stored, master weights and optimizer state — stays
// float32. The scope is per thread; a node records the precision of its forward, so backward computes in the
// same precision even when it runs outside the scope.
namespace InstructTune.Engine.Autograd;

public static class Autocast
{
    [ThreadStatic] private static int bf16Depth;

    /// <summary>True inside a bf16 scope on this thread.</summary>
    public static bool Bf16 => bf16Depth > 0;

    /// <summary>Enters a bf16 scope when <paramref name="on"/> (else a no-op scope); dispose to leave it.</summary>
    public static Scope Enter(bool on)
    {
        if (on) bf16Depth++;
        return new Scope(on);
    }

    public readonly struct Scope(bool entered) : IDisposable
    {
        public void Dispose() { if (entered) bf16Depth--; }
    }
}
