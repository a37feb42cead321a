// Which implementation serves Gemm.Sgemm: OpenBLAS when libopenblas loads, else the managed kernel.
// INSTRUCTTUNE_GEMM=managed|openblas|auto (default auto) picks at start-up; Gemm.Backend overrides in code.
// The choice is logged once to stderr.
using InstructTune.Engine.Native;

namespace InstructTune.Engine.Kernels;

/// <summary>GEMM implementations: Auto resolves to OpenBlas when available, else Managed.</summary>
public enum GemmBackend { Auto, Managed, OpenBlas }

public static partial class Gemm
{
    /// <summary>Environment variable that selects the backend at start-up.</summary>
    public const string BackendVariable = "INSTRUCTTUNE_GEMM";

    private static GemmBackend? backend;
    private static bool openBlasForced; // OpenBLAS asked for by name (env or property), not picked by auto
    private static int maxThreads = Environment.ProcessorCount;
    private static readonly object BackendGate = new();

    /// <summary>
    /// The backend in use (never Auto when read). Setting Auto re-resolves by availability; setting OpenBlas
    /// throws InvalidOperationException when libopenblas did not load.
    /// </summary>
    public static GemmBackend Backend
    {
        get => backend ?? Resolve();
        set
        {
            lock (BackendGate)
            {
                if (value == GemmBackend.OpenBlas && !OpenBlas.IsAvailable)
                    throw new InvalidOperationException("Gemm.Backend = OpenBlas: libopenblas.so.0 did not load (install libopenblas0-pthread).");
                backend = value == GemmBackend.Auto ? (OpenBlas.IsAvailable ? GemmBackend.OpenBlas : GemmBackend.Managed) : value;
                openBlasForced = value == GemmBackend.OpenBlas;
            }
        }
    }

    /// <summary>Threads GEMM may use (managed workers and OpenBLAS's pool alike). Defaults to the core count.</summary>
    public static int MaxThreads
    {
        get => maxThreads;
        set
        {
            maxThreads = Math.Max(1, value);
            OpenBlas.SetThreads(maxThreads);
        }
    }

    /// <summary>The backend an INSTRUCTTUNE_GEMM value asks for (unset or empty = Auto); anything else than
    /// managed/openblas/auto (any case) is an error naming the variable.</summary>
    internal static GemmBackend ParseBackendVariable(string? value) => (value ?? "auto").Trim().ToLowerInvariant() switch
    {
        "" or "auto" => GemmBackend.Auto,
        "managed" => GemmBackend.Managed,
        "openblas" => GemmBackend.OpenBlas,
        _ => throw new InvalidOperationException($"{BackendVariable}='{value}': expected managed, openblas or auto"),
    };

    /// <summary>True when OpenBLAS reports its generic x86-64 fallback core while the managed kernel has AVX2 or better.</summary>
    internal static bool RunsGenericKernels(string? coreName) =>
        GemmMicroKernel.UseAvx2 && string.Equals(coreName, "Prescott", StringComparison.OrdinalIgnoreCase);

    private static GemmBackend Resolve()
    {
        lock (BackendGate)
        {
            if (backend is { } b) return b;
            var requested = ParseBackendVariable(Environment.GetEnvironmentVariable(BackendVariable));
            string why;
            if (requested == GemmBackend.Managed) { b = GemmBackend.Managed; why = $"{BackendVariable}=managed"; }
            else if (OpenBlas.IsAvailable && requested == GemmBackend.Auto && RunsGenericKernels(OpenBlas.CoreName))
            {
                // OpenBLAS's dynamic-arch build falls back to its generic SSE3 "Prescott" kernels on CPUs it does not
                // recognise (0.3.21 on the current AMD EPYC): the quickstart then took 2.86 min against 1.54 min on
                // the managed AVX-512 kernel. Auto keeps the managed GEMM there; INSTRUCTTUNE_GEMM=openblas still forces it.
                b = GemmBackend.Managed;
                why = $"auto; {OpenBlas.LibraryName} runs its generic core {OpenBlas.CoreName} kernels on this CPU";
            }
            else if (OpenBlas.IsAvailable)
            {
                b = GemmBackend.OpenBlas;
                openBlasForced = requested == GemmBackend.OpenBlas;
                why = openBlasForced ? $"{BackendVariable}=openblas" : "auto; X·Wᵀ with M ≤ 4 stays on the managed GEMV";
            }
            else
            {
                b = GemmBackend.Managed;
                why = requested == GemmBackend.OpenBlas ? $"{BackendVariable}=openblas but libopenblas did not load" : "auto, libopenblas not found";
            }
            // Keep OpenBLAS's pool to our thread budget so the two never oversubscribe the cores.
            OpenBlas.SetThreads(maxThreads);
            string detail = b == GemmBackend.OpenBlas
                ? $"openblas ({OpenBlas.LibraryName}, core {OpenBlas.CoreName}, {maxThreads} threads)"
                : $"managed ({GemmMicroKernel.Name} kernel, {maxThreads} threads)";
            Console.Error.WriteLine($"[InstructTune] GEMM backend: {detail}; {why}");
            backend = b;
            return b;
        }
    }
}
