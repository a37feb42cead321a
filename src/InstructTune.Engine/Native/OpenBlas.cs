// OpenBLAS binding: loads libopenblas through NativeLibrary (no DllImport, so a missing library is a clean
// "not available", not a TypeLoadException) and calls cblas_sgemm through an unmanaged function pointer,
// which costs one indirect call and no marshalling stubs.
using System.Runtime.InteropServices;

namespace InstructTune.Engine.Native;

/// <summary>The parts of OpenBLAS the GEMM backend needs: cblas_sgemm and the thread-count controls.</summary>
public static unsafe class OpenBlas
{
    // cblas enums (cblas.h): CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112.
    private const int RowMajor = 101, NoTrans = 111, Trans = 112;

    private static readonly delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int,
        float*, int, float, float*, int, void> CblasSgemm;
    private static readonly delegate* unmanaged[Cdecl]<int, void> SetNumThreads;
    private static readonly delegate* unmanaged[Cdecl]<sbyte*> GetCoreName;

    /// <summary>True when a libopenblas exporting cblas_sgemm was found.</summary>
    public static bool IsAvailable { get; }

    /// <summary>The file name that loaded (e.g. libopenblas.so.0), or null.</summary>
    public static string? LibraryName { get; }

    static OpenBlas()
    {
        // Debian's libopenblas0-pthread installs libopenblas.so.0 through alternatives; the unversioned
        // names cover a -dev install and other platforms.
        foreach (var name in new[] { "libopenblas.so.0", "libopenblas.so", "libopenblas.dylib", "libopenblas.dll", "openblas" })
        {
            if (!NativeLibrary.TryLoad(name, out var handle)) continue;
            if (!NativeLibrary.TryGetExport(handle, "cblas_sgemm", out var sgemm)) continue;
            CblasSgemm = (delegate* unmanaged[Cdecl]<int, int, int, int, int, int, float, float*, int,
                float*, int, float, float*, int, void>)sgemm;
            if (NativeLibrary.TryGetExport(handle, "openblas_set_num_threads", out var setThreads))
                SetNumThreads = (delegate* unmanaged[Cdecl]<int, void>)setThreads;
            if (NativeLibrary.TryGetExport(handle, "openblas_get_corename", out var coreName))
                GetCoreName = (delegate* unmanaged[Cdecl]<sbyte*>)coreName;
            LibraryName = name;
            IsAvailable = true;
            return;
        }
    }

    /// <summary>The kernel family OpenBLAS picked for this CPU (e.g. "Haswell", "Zen", "Cooperlake").</summary>
    public static string CoreName => GetCoreName == null ? "unknown" : new string(GetCoreName());

    /// <summary>Caps OpenBLAS's own thread pool (so it and our workers never oversubscribe the cores).</summary>
    public static void SetThreads(int n)
    {
        if (SetNumThreads != null) SetNumThreads(Math.Max(1, n));
    }

    /// <summary>Row-major cblas_sgemm on raw pointers; the caller has validated shapes and pinned the buffers.</summary>
    public static void Sgemm(bool transA, bool transB, int M, int N, int K, float alpha,
        float* A, int lda, float* B, int ldb, float beta, float* C, int ldc)
    {
        if (!IsAvailable) throw new InvalidOperationException("OpenBLAS is not available (libopenblas.so.0 did not load).");
        CblasSgemm(RowMajor, transA ? Trans : NoTrans, transB ? Trans : NoTrans, M, N, K,
            alpha, A, lda, B, ldb, beta, C, ldc);
    }
}
