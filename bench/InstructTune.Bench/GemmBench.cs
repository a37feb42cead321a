// `gemm` bench: GFLOP/s of the products in one config-L training step (tokens 1024, dim 768, ffn 2048,
// vocab 32000), managed kernel vs OpenBLAS in the same process, plus decode GEMV bandwidth (fp32, bf16).
// Usage: dotnet run -c Release --project bench/InstructTune.Bench -- gemm [--reps N] [--only NAME]
using System.Diagnostics;
using System.Globalization;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Native;

namespace InstructTune.Bench;

public static class GemmBench
{
    private const int T = 1024, D = 768, F = 2048, V = 32000;

    // name, layout, M, N, K: Linear forward is Y = X·Wᵀ (NT), input gradient dX = dY·W (NN),
    // weight gradient dW = dYᵀ·X (TN).
    private static readonly (string Name, bool TA, bool TB, int M, int N, int K)[] Shapes =
    [
        ("ffn_up_fwd", false, true, T, F, D),
        ("ffn_up_dX", false, false, T, D, F),
        ("ffn_up_dW", true, false, F, D, T),
        ("ffn_NN", false, false, T, F, D),
        ("attn_proj_fwd", false, true, T, D, D),
        ("attn_proj_dX", false, false, T, D, D),
        ("attn_proj_dW", true, false, D, D, T),
        ("lm_head_fwd", false, true, T, V, D),
        ("lm_head_dX", false, false, T, D, V),
        ("lm_head_dW", true, false, V, D, T),
    ];

    public static int Run(string[] args)
    {
        int reps = 3;
        string? only = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--reps" && i + 1 < args.Length) reps = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else if (args[i] == "--only" && i + 1 < args.Length) only = args[++i];
            else { Console.Error.WriteLine($"gemm: unknown option '{args[i]}' (options: --reps N, --only NAME)"); return 2; }
        }
        bool blas = OpenBlas.IsAvailable;
        Console.WriteLine($"gemm bench: {Environment.ProcessorCount} threads, managed kernel {(GemmMicroKernel.UseAvx2 ? "AVX2/FMA 6x16" : "portable")}, " +
                          $"OpenBLAS {(blas ? OpenBlas.LibraryName + " core " + OpenBlas.CoreName : "not available")}; best of {reps}");
        Console.WriteLine($"{"shape",-15} {"layout",-6} {"M×N×K",-18} {"managed",10} {"openblas",10} {"ratio",7}");
        foreach (var (name, ta, tb, M, N, K) in Shapes)
        {
            if (only != null && !name.Contains(only)) continue;
            var a = Fill((long)M * K, 1); var b = Fill((long)K * N, 2); var c = new float[(long)M * N];
            int lda = ta ? M : K, ldb = tb ? K : N;
            double flop = 2.0 * M * N * K;
            double managed = flop / Best(reps, () => Gemm.SgemmOn(GemmBackend.Managed, ta, tb, M, N, K, 1f, a, lda, b, ldb, 0f, c, N)) / 1e9;
            double openblas = blas ? flop / Best(reps, () => Gemm.SgemmOn(GemmBackend.OpenBlas, ta, tb, M, N, K, 1f, a, lda, b, ldb, 0f, c, N)) / 1e9 : double.NaN;
            string layout = (ta ? "T" : "N") + (tb ? "T" : "N");
            Console.WriteLine($"{name,-15} {layout,-6} {$"{M}×{N}×{K}",-18} {managed,10:F1} {openblas,10:F1} {managed / openblas,7:F2}");
            Console.WriteLine(Json(("bench", "gemm"), ("shape", $"{name} {layout} {M}x{N}x{K}"), ("managed_gflops", managed),
                ("openblas_gflops", openblas), ("ratio", managed / openblas)));
        }
        if (only == null || only.StartsWith("gemv")) Gemv(reps, blas);
        return 0;
    }

    /// <summary>Decode-shaped products: y[1×V] = x[1×D]·Wᵀ with the LM head W [V×D] (98 MB in fp32, far
    /// beyond cache), reported as weight bytes streamed per second.</summary>
    private static void Gemv(int reps, bool blas)
    {
        var x = Fill(D, 3); var w = Fill((long)V * D, 4); var y = new float[V];
        var w16 = new ushort[w.Length];
        for (long i = 0; i < w.Length; i++) w16[i] = (ushort)(BitConverter.SingleToInt32Bits(w[i]) >> 16);
        double fp32 = 4.0 * V * D / Best(reps * 3, () => Gemm.SgemmOn(GemmBackend.Managed, false, true, 1, V, D, 1f, x, D, w, D, 0f, y, V)) / 1e9;
        double blasFp32 = blas ? 4.0 * V * D / Best(reps * 3, () => Gemm.SgemmOn(GemmBackend.OpenBlas, false, true, 1, V, D, 1f, x, D, w, D, 0f, y, V)) / 1e9 : double.NaN;
        double bf16 = 2.0 * V * D / Best(reps * 3, () => Gemm.SgemmBf16B(false, true, 1, V, D, 1f, x, D, w16, D, 0f, y, V)) / 1e9;
        Console.WriteLine($"gemv fp32 [1×{D}]·[{V}×{D}]ᵀ: managed {fp32:F1} GB/s, openblas sgemm {blasFp32:F1} GB/s");
        Console.WriteLine($"gemv bf16 [1×{D}]·[{V}×{D}]ᵀ: managed {bf16:F1} GB/s (weights streamed; {2.0 * V * D / 1e6:F0} MB per call)");
        Console.WriteLine(Json(("bench", "gemv"), ("weights", "fp32"), ("shape", $"1x{V}x{D}"), ("managed_gbps", fp32),
            ("openblas_gbps", blasFp32), ("ratio", fp32 / blasFp32)));
        Console.WriteLine(Json(("bench", "gemv"), ("weights", "bf16"), ("shape", $"1x{V}x{D}"), ("managed_gbps", bf16),
            ("openblas_fp32_gbps", blasFp32), ("ratio", bf16 / blasFp32)));
    }

    private static double Best(int reps, Action run)
    {
        run(); // warm-up: JIT, pack buffers, OpenBLAS thread start
        double best = double.MaxValue;
        for (int r = 0; r < reps; r++)
        {
            var sw = Stopwatch.StartNew();
            run();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    private static float[] Fill(long n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (long i = 0; i < n; i++) x[i] = rng.NextSingle() - 0.5f;
        return x;
    }

    private static string Json(params (string Key, object Value)[] fields) =>
        "{" + string.Join(",", fields.Select(f => $"\"{f.Key}\":" + f.Value switch
        {
            string s => $"\"{s}\"",
            double d => double.IsFinite(d) ? d.ToString("F2", CultureInfo.InvariantCulture) : "null",
            _ => f.Value.ToString(),
        })) + "}";
}
