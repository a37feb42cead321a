// bf16 compute: C[M,N] (float32) = alpha·op(A)·op(B) + beta·C where A and B are bfloat16 and the products are
// accumulated in float32 — what PyTorch's autocast and torch_dtype=bfloat16 matmuls compute on CPU. On a CPU with
// AVX512-BF16 (or AMX) and libdnnl present, oneDNN's matmul primitive runs it on the bf16 dot-product
// instructions (twice the multiply-adds per cycle of float32 FMA); otherwise the managed kernel widens both
// operands to float32 (exact) and runs the float32 GEMM, which gives the same products in float32 accumulation.
// INSTRUCTTUNE_BF16_GEMM=managed|onednn|auto (default auto) picks at start-up; Gemm.Bf16Backend overrides in code.
// The choice is logged once to stderr, like the float32 backend's.
using System.Runtime.InteropServices;
using InstructTune.Engine.Native;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Kernels;

/// <summary>Implementations of the bf16 × bf16 → float32 GEMM.</summary>
public enum Bf16GemmBackend { Auto, Managed, OneDnn }

public static unsafe partial class Gemm
{
    /// <summary>Environment variable that selects the bf16 GEMM backend at start-up.</summary>
    public const string Bf16BackendVariable = "INSTRUCTTUNE_BF16_GEMM";

    private static Bf16GemmBackend? bf16Backend;
    [ThreadStatic] private static ushort[]? bf16ScratchA, bf16ScratchB;
    [ThreadStatic] private static float[]? bf16Widened;

    /// <summary>
    /// The bf16 backend in use (never Auto when read). Setting Auto re-resolves; setting OneDnn throws
    /// InvalidOperationException when libdnnl did not load. Managed is always possible (tests force it).
    /// </summary>
    public static Bf16GemmBackend Bf16Backend
    {
        get => bf16Backend ?? ResolveBf16();
        set
        {
            lock (BackendGate)
            {
                if (value == Bf16GemmBackend.OneDnn && !OneDnn.IsAvailable)
                    throw new InvalidOperationException($"Gemm.Bf16Backend = OneDnn: {OneDnn.Unavailable}");
                bf16Backend = value == Bf16GemmBackend.Auto ? AutoBf16(out _) : value;
            }
        }
    }

    /// <summary>True when the CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16), read from
    /// /proc/cpuinfo (.NET 10 exposes no intrinsic class for them).</summary>
    public static bool CpuHasBf16DotProduct { get; } = CpuFlag(" avx512_bf16") || CpuFlag(" amx_bf16");

    /// <summary>True when /proc/cpuinfo lists amx_bf16 (tile matrix multiply: many bf16 products per cycle).</summary>
    public static bool CpuHasAmxBf16 { get; } = CpuFlag(" amx_bf16");

    private static bool CpuFlag(string flag)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("flags", StringComparison.Ordinal))
                    return line.Contains(flag, StringComparison.Ordinal);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return false;
    }

    internal static Bf16GemmBackend ParseBf16BackendVariable(string? value) => (value ?? "auto").Trim().ToLowerInvariant() switch
    {
        "" or "auto" => Bf16GemmBackend.Auto,
        "managed" => Bf16GemmBackend.Managed,
        "onednn" => Bf16GemmBackend.OneDnn,
        _ => throw new InvalidOperationException($"{Bf16BackendVariable}='{value}': expected managed, onednn or auto"),
    };

    /// <summary>The documented rule: oneDNN when it loaded and the CPU has AMX-BF16. With AVX512-BF16 alone the bf16
    /// dot product (vdpbf16ps) issues once per two cycles, half the float32 FMA's FLOP rate (bench/native/bf16_peak.c:
    /// 85 against 174 GFLOP per CPU-second), so bf16 operands widened to float32 for our FMA kernel are faster than
    /// oneDNN's bf16 kernel (training step M: 1.00× against 0.74× of float32, docs/PERFORMANCE.md); without either,
    /// oneDNN would emulate bf16. INSTRUCTTUNE_BF16_GEMM=onednn still selects oneDNN.</summary>
    private static Bf16GemmBackend AutoBf16(out string why)
    {
        if (!OneDnn.IsAvailable) { why = $"auto; {OneDnn.Unavailable}"; return Bf16GemmBackend.Managed; }
        if (!CpuHasBf16DotProduct) { why = "auto; the CPU has no AVX512-BF16/AMX, oneDNN would emulate bf16"; return Bf16GemmBackend.Managed; }
        if (!CpuHasAmxBf16)
        {
            why = "auto; the CPU has AVX512-BF16 but no AMX: its bf16 dot product runs at half the float32 FMA rate, so widening to float32 is faster (INSTRUCTTUNE_BF16_GEMM=onednn to override)";
            return Bf16GemmBackend.Managed;
        }
        why = "auto; CPU has AMX-BF16";
        return Bf16GemmBackend.OneDnn;
    }

    private static Bf16GemmBackend ResolveBf16()
    {
        lock (BackendGate)
        {
            if (bf16Backend is { } b) return b;
            var requested = ParseBf16BackendVariable(Environment.GetEnvironmentVariable(Bf16BackendVariable));
            string why;
            if (requested == Bf16GemmBackend.Managed) { b = Bf16GemmBackend.Managed; why = $"{Bf16BackendVariable}=managed"; }
            else if (requested == Bf16GemmBackend.OneDnn)
            {
                b = OneDnn.IsAvailable ? Bf16GemmBackend.OneDnn : Bf16GemmBackend.Managed;
                why = OneDnn.IsAvailable ? $"{Bf16BackendVariable}=onednn" : $"{Bf16BackendVariable}=onednn but {OneDnn.Unavailable}";
            }
            else b = AutoBf16(out why);
            string detail = b == Bf16GemmBackend.OneDnn
                ? $"onednn ({OneDnn.LibraryName} {OneDnn.VersionText}, OpenMP threads wait passively)"
                : "managed (bf16 widened to float32 while packing)";
            Console.Error.WriteLine($"[InstructTune] bf16 GEMM backend: {detail}; {why}");
            bf16Backend = b;
            return b;
        }
    }

    /// <summary>
    /// C[M,N] = alpha·op(A)·op(B) + beta·C with A and B bfloat16 bits, products accumulated in float32.
    /// Layouts, leading dimensions and aliasing as in <see cref="Sgemm"/>. oneDNN serves when it is the
    /// <see cref="Bf16Backend"/> and implements the shape; a shape oneDNN only has a reference (non-JIT)
    /// implementation for falls back to the managed kernel.
    /// </summary>
    public static void GemmBf16(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<ushort> A, int lda, ReadOnlySpan<ushort> B, int ldb, float beta, Span<float> C, int ldc)
    {
        Validate("GemmBf16", transA, transB, M, N, K, A.Length, lda, B.Length, ldb, C.Length, ldc);
        if (M == 0 || N == 0) return;
        if (K == 0 || alpha == 0f) { ScaleC(M, N, beta, C, ldc); return; }
        if (Bf16Backend == Bf16GemmBackend.OneDnn && !IsReferenceImpl(transA, transB, M, N, K, lda, ldb, ldc, alpha, beta))
            fixed (ushort* pa = A, pb = B)
            fixed (float* pc = C)
                if (OneDnn.MatmulBf16(transA, transB, M, N, K, alpha, pa, lda, pb, ldb, beta, pc, ldc)) return;
        // Managed: A widened to float32 once (exact), B widened inside packing.
        long needA = transA ? (long)(K - 1) * lda + M : (long)(M - 1) * lda + K;
        var wide = Scratch(ref bf16Widened, needA);
        BFloat16.ToFloat(A[..(int)needA], wide.AsSpan(0, (int)needA));
        SgemmBf16B(transA, transB, M, N, K, alpha, wide.AsSpan(0, (int)needA), lda, B, ldb, beta, C, ldc);
    }

    /// <summary>
    /// bf16 compute with a float32 A: A is rounded to bf16 (nearest even, as torch does) and then
    /// <see cref="GemmBf16"/> runs. Inference prefill with bf16 weights (B = W, transB) uses it.
    /// </summary>
    public static void SgemmAsBf16(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, ReadOnlySpan<ushort> B, int ldb, float beta, Span<float> C, int ldc)
    {
        Validate("SgemmAsBf16", transA, transB, M, N, K, A.Length, lda, B.Length, ldb, C.Length, ldc);
        if (M == 0 || N == 0) return;
        var a = RoundToScratch(A, transA ? K : M, transA ? M : K, lda, ref bf16ScratchA);
        GemmBf16(transA, transB, M, N, K, alpha, a, lda, B, ldb, beta, C, ldc);
    }

    /// <summary>
    /// bf16 compute with both operands float32, as autocast does for a matmul: A and B are rounded to bf16, the
    /// products accumulated in float32 into C. Mixed-precision training runs every GEMM of forward and backward
    /// through this (weights stay float32 masters; only the copy fed to the GEMM is rounded).
    /// </summary>
    public static void SgemmAsBf16(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<float> A, int lda, ReadOnlySpan<float> B, int ldb, float beta, Span<float> C, int ldc)
    {
        Validate("SgemmAsBf16", transA, transB, M, N, K, A.Length, lda, B.Length, ldb, C.Length, ldc);
        if (M == 0 || N == 0) return;
        var a = RoundToScratch(A, transA ? K : M, transA ? M : K, lda, ref bf16ScratchA);
        var b = RoundToScratch(B, transB ? N : K, transB ? K : N, ldb, ref bf16ScratchB);
        GemmBf16(transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, C, ldc);
    }

    /// <summary>The definition: bf16 operands widened exactly, products summed in double. Test oracle.</summary>
    public static void GemmBf16Naive(bool transA, bool transB, int M, int N, int K, float alpha,
        ReadOnlySpan<ushort> A, int lda, ReadOnlySpan<ushort> B, int ldb, float beta, Span<float> C, int ldc)
    {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
            {
                double acc = 0;
                for (int k = 0; k < K; k++)
                {
                    float a = BFloat16.ToFloat(transA ? A[k * lda + i] : A[i * lda + k]);
                    float b = BFloat16.ToFloat(transB ? B[j * ldb + k] : B[k * ldb + j]);
                    acc += (double)a * b;
                }
                float prev = beta == 0 ? 0f : beta * C[i * ldc + j];
                C[i * ldc + j] = (float)(alpha * acc) + prev;
            }
    }

    /// <summary>True when oneDNN would run this shape on a reference (scalar C++) implementation; those are far
    /// slower than the managed kernel, so the managed kernel serves them.</summary>
    private static bool IsReferenceImpl(bool transA, bool transB, int M, int N, int K, int lda, int ldb, int ldc, float alpha, float beta)
    {
        var impl = OneDnn.Implementation(transA, transB, M, N, K, lda, ldb, ldc, alpha, beta);
        return impl == null || impl.StartsWith("ref", StringComparison.Ordinal);
    }

    /// <summary>Rounds the rows × cols region of a (leading dimension ld) to bf16 in a per-thread buffer with
    /// the same leading dimension; the gaps between rows are left as they are (never read).</summary>
    private static ushort[] RoundToScratch(ReadOnlySpan<float> a, int rows, int cols, int ld, ref ushort[]? scratch)
    {
        long need = rows == 0 || cols == 0 ? 0 : (long)(rows - 1) * ld + cols;
        var dst = Scratch(ref scratch, need);
        if (ld == cols) BFloat16.FromFloat(a[..(int)need], dst.AsSpan(0, (int)need));
        else
            for (int r = 0; r < rows; r++)
                BFloat16.FromFloat(a.Slice(r * ld, cols), dst.AsSpan(r * ld, cols));
        return dst;
    }

    private static T[] Scratch<T>(ref T[]? buffer, long need)
    {
        if (need > Array.MaxLength) throw new ArgumentException($"bf16 GEMM operand of {need} elements is too large");
        if (buffer == null || buffer.Length < need)
            buffer = GC.AllocateUninitializedArray<T>((int)Math.Max(need, 1024), pinned: true);
        return buffer;
    }
}
