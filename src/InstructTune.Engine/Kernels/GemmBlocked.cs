// The managed SGEMM driver: the five-loop blocking of Goto/BLIS around the micro-kernel, and the split of
// C across the thread team. Loop order jc (NC columns, B block in L3) → pc (KC depth, B sliver set packed)
// → ic (MC rows, A block in L2) → jr (NR) → ir (MR) → micro-kernel (A and B slivers in L1).
using System.Runtime.InteropServices;
using static InstructTune.Engine.Kernels.GemmMicroKernel;

namespace InstructTune.Engine.Kernels;

/// <summary>Element type of the B operand as stored; packing converts it to float32.</summary>
internal enum GemmBKind { F32, Bf16, Nf4 }

/// <summary>One GEMM call's operands as raw pointers (the public entry points pin the spans).</summary>
internal unsafe struct GemmArgs
{
    public bool TransA, TransB;
    public int M, N, K;
    public float Alpha, Beta;
    public float* A; public int Lda;
    public void* B; public int Ldb;
    public float* C; public int Ldc;
    public GemmBKind BKind;
    /// <summary>NF4 only: one float32 scale per block of <see cref="Quantization.Nf4.BlockSize"/> weights.</summary>
    public float* BScales;

    public static GemmArgs Create(bool transA, bool transB, int M, int N, int K, float alpha, float* A, int lda,
        void* B, int ldb, GemmBKind bKind, float beta, float* C, int ldc) => new()
    {
        TransA = transA, TransB = transB, M = M, N = N, K = K, Alpha = alpha, Beta = beta,
        A = A, Lda = lda, B = B, Ldb = ldb, C = C, Ldc = ldc, BKind = bKind,
    };
}

internal static unsafe class GemmBlocked
{
    // Block sizes. KC·NR·4 = 16 KiB of B sliver + KC·MR·4 = 6 KiB (AVX2) or 12 KiB (AVX-512) of A sliver stay
    // in the 32 KiB L1d; MC·KC·4 = 144 KiB of packed A sits in L2 (512 KiB on Zen3, 1 MiB on the bench
    // machine); KC·NC·4 = 3 MiB of packed B per thread sits in the shared L3. MC is a multiple of both MRs.
    // Settable so the bench can explore (`--blocks`: 96–288 × 192–512 measured within noise of these).
    internal static int MC = 144, KC = 256, NC = 3072;

    /// <summary>Below this many multiply-adds one thread is faster than waking the team.</summary>
    internal const long ParallelThreshold = 1L << 21;

    [ThreadStatic] private static float[]? packA, packB;

    private static GemmArgs job;

    /// <summary>Chunks a band must be at least this long (rows or columns): each chunk re-packs the other
    /// operand's whole block, which costs about as much as 25/length of the chunk's arithmetic.</summary>
    internal const int MinChunk = 1024;

    private static int chunks, nextChunk;

    /// <summary>C = alpha·op(A)·op(B) + beta·C over the whole of C, on up to maxThreads threads.</summary>
    public static void Run(in GemmArgs g, int maxThreads)
    {
        long work = (long)g.M * g.N * g.K;
        int threads = work < ParallelThreshold ? 1 : maxThreads;
        if (threads > 1 && GemmWorkers.TryEnter())
        {
            try
            {
                job = g;
                // One chunk per thread when the split dimension is short; when it is long (the LM head's
                // 32000), up to 8 per thread handed out first come, first served, so a thread that loses
                // its core to another process does not hold the whole product back.
                int split = Math.Max(g.M, g.N);
                chunks = Math.Clamp(split / MinChunk, threads, 8 * threads);
                nextChunk = 0;
                GemmWorkers.Run(&RunPart, threads);
            }
            finally { GemmWorkers.Exit(); }
            return;
        }
        Serial(g, 0, g.M, 0, g.N);
    }

    /// <summary>Takes chunks until none is left. A chunk is a band of columns when N ≥ M (each thread then
    /// packs only its own part of B, and re-packs the smaller A), otherwise a band of rows. Bands are whole
    /// tiles so no tile is shared.</summary>
    private static void RunPart(int p, int n)
    {
        ref readonly var g = ref job;
        for (int c = Interlocked.Increment(ref nextChunk) - 1; c < chunks; c = Interlocked.Increment(ref nextChunk) - 1)
        {
            if (g.N >= g.M)
            {
                var (lo, hi) = Band(g.N, NR, c, chunks);
                if (lo < hi) Serial(g, 0, g.M, lo, hi);
            }
            else
            {
                var (lo, hi) = Band(g.M, MaxMR, c, chunks);
                if (lo < hi) Serial(g, lo, hi, 0, g.N);
            }
        }
    }

    private static (int Lo, int Hi) Band(int size, int unit, int p, int n)
    {
        int units = (size + unit - 1) / unit;
        int lo = (int)((long)units * p / n) * unit, hi = (int)((long)units * (p + 1) / n) * unit;
        return (Math.Min(lo, size), Math.Min(hi, size));
    }

    /// <summary>One thread's share: C[m0..m1, n0..n1] computed with this thread's pack buffers.</summary>
    public static void Serial(in GemmArgs g, int m0, int m1, int n0, int n1)
    {
        var kind = GemmMicroKernel.Kind;
        int MR = RowsOf(kind);
        // Packed blocks are whole slivers: round the largest block up to MR / NR.
        int mcMax = RoundUp(Math.Min(MC, m1 - m0), MR), kcMax = Math.Min(KC, g.K), ncMax = RoundUp(Math.Min(NC, n1 - n0), NR);
        float* pa = Aligned(ref packA, mcMax * kcMax);
        float* pb = Aligned(ref packB, ncMax * kcMax);
        for (int jc = n0; jc < n1; jc += NC)
        {
            int nc = Math.Min(NC, n1 - jc);
            for (int pc = 0; pc < g.K; pc += KC)
            {
                int kc = Math.Min(KC, g.K - pc);
                // The first depth block applies beta; later ones accumulate onto it.
                float beta = pc == 0 ? g.Beta : 1f;
                PackB(g, pc, kc, jc, nc, pb);
                for (int ic = m0; ic < m1; ic += MC)
                {
                    int mc = Math.Min(MC, m1 - ic);
                    GemmPack.PackA(g.TransA, g.A, g.Lda, ic, mc, pc, kc, pa, MR);
                    Macro(g, kind, mc, nc, kc, pa, pb, g.C + (nint)ic * g.Ldc + jc, beta);
                }
            }
        }
    }

    /// <summary>The two innermost loops over tiles of one packed A block × packed B block.</summary>
    private static void Macro(in GemmArgs g, GemmTileKind kind, int mc, int nc, int kc, float* pa, float* pb, float* c, float beta)
    {
        int MR = RowsOf(kind);
        nint ldc = g.Ldc;
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* b = pb + (nint)jr * kc;
            for (int ir = 0; ir < mc; ir += MR)
            {
                int mr = Math.Min(MR, mc - ir);
                float* a = pa + (nint)ir * kc;
                float* ct = c + ir * ldc + jr;
                if (mr == MR && nr == NR) Tile(kind, kc, a, b, ct, ldc, g.Alpha, beta);
                else EdgeTile(kind, kc, a, b, ct, ldc, mr, nr, g.Alpha, beta);
            }
        }
    }

    private static void PackB(in GemmArgs g, int pc, int kc, int jc, int nc, float* pb)
    {
        switch (g.BKind)
        {
            case GemmBKind.F32: GemmPack.PackB(g.TransB, (float*)g.B, g.Ldb, pc, kc, jc, nc, pb); break;
            default: GemmPackLowPrecision.PackB(g, pc, kc, jc, nc, pb); break;
        }
    }

    private static int RoundUp(int x, int unit) => (x + unit - 1) / unit * unit;

    /// <summary>A 64-byte aligned view of a pinned, per-thread buffer of at least n floats (grown, never shrunk).</summary>
    private static float* Aligned(ref float[]? buffer, int n)
    {
        if (buffer == null || buffer.Length < n + 16)
            buffer = GC.AllocateUninitializedArray<float>(n + 16, pinned: true);
        float* p = (float*)Marshal.UnsafeAddrOfPinnedArrayElement(buffer, 0);
        return (float*)(((nint)p + 63) & ~(nint)63);
    }
}
