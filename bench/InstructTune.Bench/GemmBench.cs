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

    /// <summary>The products timed: config L's by default, or the `--shape NAME:M,N,K` list (layout NN, Y = X·W
    /// with W [K, N] row-major, as bench/native/onednn_matmul.c times oneDNN's plain layout).</summary>
    private static (string Name, bool TA, bool TB, int M, int N, int K)[] active = Shapes;

    public static int Run(string[] args)
    {
        int reps = 3;
        string? only = null;
        bool bf16 = false;
        var custom = new List<(string, bool, bool, int, int, int)>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--reps" && i + 1 < args.Length) reps = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else if (args[i] == "--only" && i + 1 < args.Length) only = args[++i];
            else if (args[i] == "--blocks" && i + 1 < args.Length)
            {
                // Tuning aid: MC,KC,NC for the managed kernel.
                var v = args[++i].Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray();
                (GemmBlocked.MC, GemmBlocked.KC, GemmBlocked.NC) = (v[0], v[1], v[2]);
            }
            else if (args[i] == "--tile" && i + 1 < args.Length)
                GemmMicroKernel.Kind = Enum.Parse<GemmTileKind>(args[++i], ignoreCase: true);
            else if (args[i] == "--kernel") { KernelOnly(); return 0; }
            else if (args[i] == "--bf16") bf16 = true;
            else if (args[i] == "--threads" && i + 1 < args.Length) Gemm.MaxThreads = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else if (args[i] == "--shape" && i + 1 < args.Length && ParseShape(args[++i]) is { } shape) custom.Add(shape);
            else { Console.Error.WriteLine($"gemm: unknown or malformed option '{args[i]}' (options: --reps N, --only NAME, --bf16, --threads N, --shape NAME:M,N,K (repeatable), --blocks MC,KC,NC, --tile avx512|avx2|portable, --kernel)"); return 2; }
        }
        if (custom.Count > 0) active = [.. custom];
        if (bf16) return Bf16(reps, only);
        bool blas = OpenBlas.IsAvailable;
        Gemm.MaxThreads = Gemm.MaxThreads; // also caps OpenBLAS's pool to the same count
        try { Console.WriteLine($"Gemm.Backend (what Gemm.Sgemm uses; both are timed below): {Gemm.Backend}"); }
        catch (InvalidOperationException e) { Console.Error.WriteLine($"gemm: {e.Message}"); return 2; }
        Console.WriteLine($"gemm bench: {Gemm.MaxThreads} threads, managed kernel {GemmMicroKernel.Name}, " +
                          $"OpenBLAS {(blas ? OpenBlas.LibraryName + " core " + OpenBlas.CoreName : "not available")}; best of {reps}");
        // Wall-clock GFLOP/s, and in brackets GFLOP per CPU-second per thread: the machine is shared, and the
        // CPU-time figure shows kernel efficiency even when other processes take the cores.
        Console.WriteLine($"{"shape",-15} {"layout",-6} {"M×N×K",-18} {"managed",10} {"(cpu)",7} {"openblas",10} {"(cpu)",7} {"ratio",7}");
        foreach (var (name, ta, tb, M, N, K) in active)
        {
            if (only != null && !name.Contains(only)) continue;
            var a = Fill((long)M * K, 1); var b = Fill((long)K * N, 2); var c = new float[(long)M * N];
            int lda = ta ? M : K, ldb = tb ? K : N;
            double flop = 2.0 * M * N * K;
            var (mWall, mCpu) = BestWithCpu(reps, () => Gemm.SgemmOn(GemmBackend.Managed, ta, tb, M, N, K, 1f, a, lda, b, ldb, 0f, c, N));
            var (oWall, oCpu) = blas ? BestWithCpu(reps, () => Gemm.SgemmOn(GemmBackend.OpenBlas, ta, tb, M, N, K, 1f, a, lda, b, ldb, 0f, c, N)) : (double.NaN, double.NaN);
            double managed = flop / mWall / 1e9, openblas = flop / oWall / 1e9;
            string layout = (ta ? "T" : "N") + (tb ? "T" : "N");
            Console.WriteLine($"{name,-15} {layout,-6} {$"{M}×{N}×{K}",-18} {managed,10:F1} {flop / mCpu / 1e9,7:F1} {openblas,10:F1} {flop / oCpu / 1e9,7:F1} {managed / openblas,7:F2}");
            Console.WriteLine(Json(("bench", "gemm"), ("shape", $"{name} {layout} {M}x{N}x{K}"), ("managed_gflops", managed),
                ("openblas_gflops", openblas), ("ratio", managed / openblas)));
        }
        if (custom.Count == 0 && (only == null || only.StartsWith("lowp"))) LowPrecision(reps);
        if (custom.Count == 0 && (only == null || only.StartsWith("gemv"))) Gemv(reps, blas);
        return 0;
    }

    /// <summary>
    /// `gemm --bf16`: each config-L product computed in bf16 (operands already bf16, float32 accumulation) on
    /// oneDNN and on the managed kernel, against the float32 managed GEMM of the same shape, same process.
    /// </summary>
    private static int Bf16(int reps, string? only)
    {
        Console.WriteLine($"bf16 GEMM bench: oneDNN {(OneDnn.IsAvailable ? $"{OneDnn.LibraryName} {OneDnn.VersionText}" : $"not available ({OneDnn.Unavailable})")}, " +
                          $"CPU bf16 dot products: {Gemm.CpuHasBf16DotProduct}, {Gemm.MaxThreads} threads; best of {reps}");
        Console.WriteLine($"{"shape",-15} {"layout",-6} {"M×N×K",-18} {"f32",8} {"bf16 mgd",9} {"onednn",8} {"×f32",6}  impl");
        var saved = Gemm.Bf16Backend;
        try
        {
            foreach (var (name, ta, tb, M, N, K) in active)
            {
                if (only != null && !name.Contains(only)) continue;
                var a = Fill((long)M * K, 1); var b = Fill((long)K * N, 2); var c = new float[(long)M * N];
                var a16 = new ushort[a.Length]; var b16 = new ushort[b.Length];
                InstructTune.Engine.Tensors.BFloat16.FromFloat(a, a16); InstructTune.Engine.Tensors.BFloat16.FromFloat(b, b16);
                int lda = ta ? M : K, ldb = tb ? K : N;
                double flop = 2.0 * M * N * K;
                var f32t = BestWithCpu(reps, () => Gemm.SgemmOn(GemmBackend.Managed, ta, tb, M, N, K, 1f, a, lda, b, ldb, 0f, c, N));
                double f32 = flop / f32t.Wall / 1e9, f32Cpu = flop / f32t.CpuPerThread / 1e9;
                Gemm.Bf16Backend = Bf16GemmBackend.Managed;
                double mgd = flop / BestWithCpu(reps, () => Gemm.GemmBf16(ta, tb, M, N, K, 1f, a16, lda, b16, ldb, 0f, c, N)).Wall / 1e9;
                double dnn = double.NaN, dnnCpu = double.NaN;
                string impl = "-";
                if (OneDnn.IsAvailable)
                {
                    Gemm.Bf16Backend = Bf16GemmBackend.OneDnn;
                    var dt = BestWithCpu(reps, () => Gemm.GemmBf16(ta, tb, M, N, K, 1f, a16, lda, b16, ldb, 0f, c, N));
                    dnn = flop / dt.Wall / 1e9; dnnCpu = flop / dt.CpuPerThread / 1e9;
                    impl = OneDnn.Implementation(ta, tb, M, N, K, lda, ldb, N, 1f, 0f) ?? "none";
                }
                string layout = (ta ? "T" : "N") + (tb ? "T" : "N");
                Console.WriteLine($"{name,-15} {layout,-6} {$"{M}×{N}×{K}",-18} {f32,8:F1} {mgd,9:F1} {dnn,8:F1} {dnn / f32,6:F2}  {impl}; per CPU-second f32 {f32Cpu:F1}, onednn {dnnCpu:F1}");
                Console.WriteLine(Json(("bench", "gemm-bf16"), ("shape", $"{name} {layout} {M}x{N}x{K}"), ("f32_gflops", f32),
                    ("bf16_managed_gflops", mgd), ("bf16_onednn_gflops", dnn), ("ratio_vs_f32", dnn / f32),
                    ("f32_gflops_per_cpu_s", f32Cpu), ("bf16_onednn_gflops_per_cpu_s", dnnCpu)));
            }
        }
        finally { Gemm.Bf16Backend = saved; }
        return 0;
    }

    private static (string, bool, bool, int, int, int)? ParseShape(string s)
    {
        var parts = s.Split(':');
        if (parts.Length != 2) return null;
        var d = parts[1].Split(',');
        if (d.Length != 3 || !d.All(x => int.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0)) return null;
        return (parts[0], false, false, int.Parse(d[0], CultureInfo.InvariantCulture), int.Parse(d[1], CultureInfo.InvariantCulture), int.Parse(d[2], CultureInfo.InvariantCulture));
    }

    /// <summary>The FFN forward product with the weight stored as bf16 and as NF4 (QLoRA's frozen base),
    /// converted inside packing, against the same product in fp32 on the managed kernel.</summary>
    private static void LowPrecision(int reps)
    {
        const int M = T, N = F, K = D;
        var x = Fill((long)M * K, 5); var w = Fill((long)N * K, 6); var y = new float[(long)M * N];
        var w16 = new ushort[w.Length];
        for (long i = 0; i < w.Length; i++) w16[i] = (ushort)(BitConverter.SingleToInt32Bits(w[i]) >> 16);
        var nf4 = InstructTune.Engine.Quantization.Nf4Matrix.Quantize(w, N, K);
        double flop = 2.0 * M * N * K;
        var (f32, f32Cpu) = BestWithCpu(reps, () => Gemm.SgemmOn(GemmBackend.Managed, false, true, M, N, K, 1f, x, K, w, K, 0f, y, N));
        var (b16, b16Cpu) = BestWithCpu(reps, () => Gemm.SgemmBf16B(false, true, M, N, K, 1f, x, K, w16, K, 0f, y, N));
        var (q4, q4Cpu) = BestWithCpu(reps, () => Gemm.SgemmNf4B(false, true, M, N, K, 1f, x, K, nf4, 0f, y, N));
        foreach (var (name, wall, cpu) in new[] { ("bf16", b16, b16Cpu), ("nf4", q4, q4Cpu) })
        {
            Console.WriteLine($"ffn_up_fwd X·Wᵀ with {name} W: {flop / wall / 1e9:F1} GFLOP/s ({flop / cpu / 1e9:F1} cpu) vs fp32 W " +
                              $"{flop / f32 / 1e9:F1} ({flop / f32Cpu / 1e9:F1} cpu), ratio {f32 / wall:F2}");
            Console.WriteLine(Json(("bench", "gemm-lowp"), ("weights", name), ("shape", $"ffn_up_fwd NT {M}x{N}x{K}"),
                ("managed_gflops", flop / wall / 1e9), ("fp32_gflops", flop / f32 / 1e9), ("ratio", f32 / wall)));
        }
    }

    /// <summary>Decode-shaped products: y[1×V] = x[1×D]·Wᵀ with the LM head W [V×D] (98 MB in fp32, far
    /// beyond cache), reported as weight bytes streamed per second.</summary>
    private static void Gemv(int reps, bool blas)
    {
        var x = Fill(D, 3); var w = Fill((long)V * D, 4); var y = new float[V];
        var w16 = new ushort[w.Length];
        for (long i = 0; i < w.Length; i++) w16[i] = (ushort)(BitConverter.SingleToInt32Bits(w[i]) >> 16);
        double bytes32 = 4.0 * V * D, bytes16 = 2.0 * V * D;
        var (f32Wall, f32Cpu) = BestWithCpu(reps * 3, () => Gemm.SgemmOn(GemmBackend.Managed, false, true, 1, V, D, 1f, x, D, w, D, 0f, y, V));
        var (blasWall, blasCpu) = blas ? BestWithCpu(reps * 3, () => Gemm.SgemmOn(GemmBackend.OpenBlas, false, true, 1, V, D, 1f, x, D, w, D, 0f, y, V)) : (double.NaN, double.NaN);
        var (b16Wall, b16Cpu) = BestWithCpu(reps * 3, () => Gemm.SgemmBf16B(false, true, 1, V, D, 1f, x, D, w16, D, 0f, y, V));
        double fp32 = bytes32 / f32Wall / 1e9, blasFp32 = bytes32 / blasWall / 1e9, bf16 = bytes16 / b16Wall / 1e9;
        Console.WriteLine($"gemv fp32 [1×{D}]·[{V}×{D}]ᵀ: managed {fp32:F1} GB/s ({bytes32 / f32Cpu / 1e9:F1} per CPU-second), " +
                          $"openblas sgemm {blasFp32:F1} GB/s ({bytes32 / blasCpu / 1e9:F1})");
        Console.WriteLine($"gemv bf16 [1×{D}]·[{V}×{D}]ᵀ: managed {bf16:F1} GB/s ({bytes16 / b16Cpu / 1e9:F1} per CPU-second); " +
                          $"{bytes16 / 1e6:F0} MB of weights per call, {bytes32 / b16Wall / 1e9:F1} GB/s fp32-equivalent");
        Console.WriteLine(Json(("bench", "gemv"), ("weights", "fp32"), ("shape", $"1x{V}x{D}"), ("managed_gbps", fp32),
            ("openblas_gbps", blasFp32), ("ratio", fp32 / blasFp32)));
        Console.WriteLine(Json(("bench", "gemv"), ("weights", "bf16"), ("shape", $"1x{V}x{D}"), ("managed_gbps", bf16),
            ("openblas_fp32_gbps", blasFp32), ("ratio", bf16 / blasFp32)));
    }

    /// <summary>The micro-kernel alone on L1/L2-resident packed slivers (one thread): the ceiling the
    /// blocked driver can approach. Reported per CPU-second so other load on the machine does not hide it.</summary>
    private static unsafe void KernelOnly()
    {
        // The macro-kernel's access pattern with the packing taken out: 24 A slivers (one MC block, L2),
        // B slivers either one (L1) or the 48 of a 768-wide panel (L2/L3), C either a small resident tile
        // block or the tiles of a 1024×768 matrix (memory). Shows what each level of the hierarchy costs.
        const int kc = 256, tiles = 24, NR = GemmMicroKernel.NR, slivers = 48, ldcBig = 768;
        var a = GC.AllocateArray<float>(kc * GemmMicroKernel.MaxMR * tiles + 16, pinned: true);
        var b = GC.AllocateArray<float>(kc * NR * slivers + 16, pinned: true);
        var c = GC.AllocateArray<float>(1024 * ldcBig + 16, pinned: true);
        int MR = GemmMicroKernel.MR;
        fixed (float* pa0 = a, pb0 = b, pc = c)
        {
            float* pa = (float*)(((nint)pa0 + 63) & ~(nint)63), pb = (float*)(((nint)pb0 + 63) & ~(nint)63);
            var proc = System.Diagnostics.Process.GetCurrentProcess();
            foreach (var (manyB, bigC) in new[] { (false, false), (true, false), (false, true), (true, true) })
            {
                const int reps = 100;
                proc.Refresh();
                var cpu0 = proc.TotalProcessorTime;
                long tileCount = 0;
                for (int r = 0; r < reps; r++)
                    for (int jr = 0; jr < slivers; jr++)
                        for (int t = 0; t < tiles; t++, tileCount++)
                        {
                            float* ct = bigC ? pc + (nint)(((r % 7) * 120 + t * MR) % (1024 - MR)) * ldcBig + jr * NR : pc + t * MR * 64;
                            GemmMicroKernel.Tile(GemmMicroKernel.Kind, kc, pa + t * kc * MR, pb + (manyB ? jr * kc * NR : 0), ct, bigC ? ldcBig : 64, 1f, 1f);
                        }
                proc.Refresh();
                double cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds;
                Console.WriteLine($"micro-kernel {MR}x{NR} kc={kc}, B {(manyB ? "panel" : "one sliver")}, C {(bigC ? "1024x768" : "resident")}: " +
                                  $"{2.0 * MR * NR * kc * tileCount / cpu / 1e9:F1} GFLOP per CPU-second");
            }
        }
    }

    /// <summary>Best wall time of reps runs, and the process CPU seconds per thread of that run.</summary>
    private static (double Wall, double CpuPerThread) BestWithCpu(int reps, Action run)
    {
        run();
        var proc = System.Diagnostics.Process.GetCurrentProcess();
        (double Wall, double Cpu) best = (double.MaxValue, double.MaxValue);
        for (int r = 0; r < reps; r++)
        {
            proc.Refresh();
            var cpu0 = proc.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            run();
            double wall = sw.Elapsed.TotalSeconds;
            proc.Refresh();
            double cpu = (proc.TotalProcessorTime - cpu0).TotalSeconds / Gemm.MaxThreads;
            if (wall < best.Wall) best.Wall = wall;
            if (cpu < best.Cpu) best.Cpu = cpu;
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
