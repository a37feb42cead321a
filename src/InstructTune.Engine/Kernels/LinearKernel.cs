// Y[T, O] = X[T, K] · W[O, K]ᵀ (+ bias[O]): the linear layer of inference, for float32, bfloat16 or q8_0 weights
// (ggml's block_q8_0) and float32 activations. The weights come as a WeightView: an address that stays valid for
// the call (a memory-mapped checkpoint, or an array the caller pins) with its shape and format; storage, mapping
// and lifetime belong to the caller (the model layer's WeightMatrix).
// Decode (T < GemmMinTokens) is a matrix-vector product limited by memory bandwidth: every weight is streamed
// once, and bf16 halves the bytes, q8_0 nearly quarters them. A few tokens reuse each weight row from L1: a 4-row
// × 2-token register tile of dot products (8 independent FMA chains) along K, rows split across cores when the
// matrix is large enough for threads to pay; q8_0 rows go to Q8Gemv on x quantised once per call. From
// GemmMinTokens tokens on (prefill), the packed GEMM serves (q8_0 rows dequantised in bounded slabs).
// Y must not alias X or W. The naive twin ForwardNaive (double precision) is the test oracle
// (tests/InstructTune.Engine.Tests/Kernels/LinearKernelTests.cs).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Numerics.Tensors;
using InstructTune.Engine.Quantization;
using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Kernels;

/// <summary>How a weight matrix stores its values.</summary>
public enum WeightFormat
{
    F32,
    Bf16,
    /// <summary>ggml's block_q8_0: per 32 values of a row, a half scale then 32 int8 quants (34 bytes).</summary>
    Q8_0,
}

/// <summary>
/// A row-major weight matrix [Rows, Cols] (HF nn.Linear layout: out × in) at <see cref="Data"/>, as the linear
/// kernels read it. The address must stay valid (mapped, native, or pinned) while a kernel runs on it.
/// </summary>
public readonly struct WeightView
{
    public nint Data { get; }
    public int Rows { get; }
    public int Cols { get; }
    public WeightFormat Format { get; }

    public WeightView(nint data, int rows, int cols, WeightFormat format)
    {
        if (rows < 0 || cols < 0) throw new ArgumentException($"WeightView: shape [{rows},{cols}]");
        if (format == WeightFormat.Q8_0 && cols % Q8_0.BlockSize != 0)
            throw new ArgumentException($"WeightView: q8_0 rows need a multiple of {Q8_0.BlockSize} values, this one has {cols}");
        if (data == 0 && (long)rows * cols != 0) throw new ArgumentException("WeightView: null address");
        Data = data; Rows = rows; Cols = cols; Format = format;
    }

    /// <summary>Bytes of one stored row.</summary>
    public long RowBytes => Format switch
    {
        WeightFormat.Q8_0 => (long)Cols / Q8_0.BlockSize * Q8_0.BlockBytes,
        WeightFormat.Bf16 => 2L * Cols,
        _ => 4L * Cols,
    };

    public long ByteLength => RowBytes * Rows;

    public unsafe ReadOnlySpan<float> F32 => Format == WeightFormat.F32 ? new((void*)Data, checked(Rows * Cols))
        : throw new InvalidOperationException($"{Format} weight, not F32");

    public unsafe ReadOnlySpan<ushort> Bf16 => Format == WeightFormat.Bf16 ? new((void*)Data, checked(Rows * Cols))
        : throw new InvalidOperationException($"{Format} weight, not Bf16");

    public unsafe ReadOnlySpan<byte> Q8Blocks => Format == WeightFormat.Q8_0 ? new((void*)Data, checked((int)ByteLength))
        : throw new InvalidOperationException($"{Format} weight, not q8_0");

    /// <summary>Row r as float32 into dst[..Cols] (embedding lookup, q8_0 prefill slabs, the naive twin).</summary>
    public unsafe void RowToF32(int r, Span<float> dst)
    {
        if ((uint)r >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(r), $"row {r} of {Rows}");
        if (dst.Length < Cols) throw new ArgumentException($"RowToF32: destination holds {dst.Length} values, row has {Cols}");
        long rb = RowBytes;
        byte* row = (byte*)Data + r * rb;
        switch (Format)
        {
            case WeightFormat.Q8_0: Q8_0.Dequantize(new ReadOnlySpan<byte>(row, (int)rb), dst[..Cols]); break;
            case WeightFormat.Bf16: BFloat16.ToFloat(new ReadOnlySpan<ushort>(row, Cols), dst[..Cols]); break;
            default: new ReadOnlySpan<float>(row, Cols).CopyTo(dst); break;
        }
    }
}

public static class LinearKernel
{
    /// <summary>Matrices with fewer elements than this run on one thread (dispatch costs more than it saves).</summary>
    public const long ParallelThreshold = 1 << 16;

    /// <summary>From this many tokens on, the packed GEMM serves (weights reused across tokens).</summary>
    public const int GemmMinTokens = 8;

    /// <summary>
    /// Y[T, O] = X[T, K]·Wᵀ (+ bias). <paramref name="bf16Operand"/>, when not empty, is W rounded to bf16 [O, K]
    /// (W itself for bf16 weights): prompts of GemmMinTokens+ tokens then compute in bf16 (X rounded to bf16,
    /// float32 accumulation; <c>--compute bf16</c>); decode ignores it (bound by the bytes of W, not arithmetic).
    /// </summary>
    public static unsafe void Forward(ReadOnlySpan<float> X, in WeightView W, ReadOnlySpan<float> bias, Span<float> Y, int T,
        ReadOnlySpan<ushort> bf16Operand = default)
    {
        int O = W.Rows, K = W.Cols;
        if (X.Length < T * K || Y.Length < T * O || (bias.Length != 0 && bias.Length != O))
            throw new ArgumentException($"Linear: X {X.Length} / Y {Y.Length} / bias {bias.Length} do not fit T={T}, W [{O},{K}]");
        if (T >= GemmMinTokens)
        {
            if (bf16Operand.Length != 0 && bf16Operand.Length != (long)O * K)
                throw new ArgumentException($"Linear: bf16 operand holds {bf16Operand.Length} values, W [{O},{K}]");
            // Prefill: the packed, cache-blocked GEMM (bf16 B widened while packing) beats dot-product tiles.
            // bf16 compute: X rounded to bf16, bf16 × bf16 products accumulated in float32 (oneDNN where chosen).
            if (bf16Operand.Length != 0) Gemm.SgemmAsBf16(false, true, T, O, K, 1f, X, K, bf16Operand, K, 0f, Y, O);
            else if (W.Format == WeightFormat.Q8_0) ForwardQ8Prefill(X, W, Y, T);
            else if (W.Format == WeightFormat.Bf16) Gemm.SgemmBf16B(false, true, T, O, K, 1f, X, K, W.Bf16, K, 0f, Y, O);
            else Gemm.SgemmSharedTeam(false, true, T, O, K, 1f, X, K, W.F32, K, 0f, Y, O);
            if (bias.Length != 0)
                for (int t = 0; t < T; t++) TensorPrimitives.Add(Y.Slice(t * O, O), bias, Y.Slice(t * O, O));
            return;
        }
        fixed (float* x = X, y = Y, b = bias)
            Tiled(T, (nint)x, [new Job(W, bias.Length == 0 ? 0 : (nint)b, (nint)y)]);
    }

    /// <summary>
    /// Several products of the same input X [T, K] (e.g. q/k/v, or gate/up) in one parallel region, so a decode
    /// step pays one dispatch for them instead of one each. Each output Y is [T, W.Rows]; Bias is null or [W.Rows].
    /// </summary>
    public static void ForwardMany(float[] X, int T, ReadOnlySpan<(WeightView W, float[]? Bias, float[] Y)> products)
    {
        if (T >= GemmMinTokens)
        {
            foreach (var (w, b, y) in products) Forward(X, w, b, y, T);
            return;
        }
        var handles = new List<GCHandle>();
        try
        {
            GCHandle Pin(object o) { var h = GCHandle.Alloc(o, GCHandleType.Pinned); handles.Add(h); return h; }
            var jobs = new Job[products.Length];
            for (int i = 0; i < products.Length; i++)
            {
                var (w, b, y) = products[i];
                if (X.Length < T * w.Cols || y.Length < T * w.Rows || (b != null && b.Length != w.Rows))
                    throw new ArgumentException($"Linear: X {X.Length} / Y {y.Length} / bias {b?.Length} do not fit T={T}, W [{w.Rows},{w.Cols}]");
                jobs[i] = new Job(w, b == null ? 0 : Pin(b).AddrOfPinnedObject(), Pin(y).AddrOfPinnedObject());
            }
            Tiled(T, Pin(X).AddrOfPinnedObject(), jobs);
        }
        finally { foreach (var h in handles) h.Free(); }
    }

    /// <summary>Rows of q8_0 weights dequantised per slab for the packed GEMM of a prompt: the float32 copy is
    /// transient and bounded (about 4 MiB), not a second copy of the matrix.</summary>
    private static void ForwardQ8Prefill(ReadOnlySpan<float> X, in WeightView W, Span<float> Y, int T)
    {
        int O = W.Rows, K = W.Cols;
        int slab = Math.Clamp((1 << 20) / K / 16 * 16, 16, O);
        var wf = Q8Scratch((long)slab * K);
        for (int o0 = 0; o0 < O; o0 += slab)
        {
            int n = Math.Min(slab, O - o0);
            for (int r = 0; r < n; r++) W.RowToF32(o0 + r, wf.AsSpan(r * K, K));
            // Y[:, o0:o0+n] = X · slabᵀ (ldc = O)
            Gemm.SgemmSharedTeam(false, true, T, n, K, 1f, X, K, wf, K, 0f, Y[o0..], O);
        }
    }

    [ThreadStatic] private static float[]? q8Dequantised;

    private static float[] Q8Scratch(long n)
    {
        if (q8Dequantised == null || q8Dequantised.Length < n) q8Dequantised = GC.AllocateUninitializedArray<float>(checked((int)n));
        return q8Dequantised;
    }

    private readonly record struct Job(WeightView W, nint Bias, nint Y);

    /// <summary>Splits the 4-row blocks of all jobs into one contiguous range per thread. q8_0 jobs read X
    /// quantised to q8_0 once for all of them (as llama.cpp does for its q8_0 × q8_0 dot products).</summary>
    private static unsafe void Tiled(int T, nint xp, Job[] jobs)
    {
        if (jobs.Any(j => j.W.Format == WeightFormat.Q8_0))
        {
            int K = jobs[0].W.Cols;
            if (jobs.Any(j => j.W.Cols != K)) throw new ArgumentException("Linear: products of one input must share its width");
            var (xq, xd) = Q8Gemv.QuantizeActivations(new ReadOnlySpan<float>((float*)xp, T * K), T, K);
            fixed (sbyte* q = xq) fixed (float* d = xd) TiledParts(T, xp, jobs, (nint)q, (nint)d);
        }
        else TiledParts(T, xp, jobs, 0, 0);
    }

    private static void TiledParts(int T, nint xp, Job[] jobs, nint xq, nint xd)
    {
        int totalBlocks = 0;
        long elements = 0;
        foreach (var j in jobs) { totalBlocks += (j.W.Rows + 3) / 4; elements += (long)j.W.Rows * j.W.Cols; }
        int threads = elements >= ParallelThreshold ? Math.Min(Parallel2.Threads, totalBlocks) : 1;
        void Part(int part)
        {
            int b0 = (int)((long)totalBlocks * part / threads), b1 = (int)((long)totalBlocks * (part + 1) / threads);
            int first = 0;
            foreach (var j in jobs)
            {
                int nb = (j.W.Rows + 3) / 4;
                int lo = Math.Max(b0, first), hi = Math.Min(b1, first + nb);
                if (lo < hi) Range(xp, j.W, j.Bias, j.Y, T, (lo - first) * 4, Math.Min(j.W.Rows, (hi - first) * 4), xq, xd);
                first += nb;
            }
        }
        if (threads <= 1) Part(0);
        else Parallel2.RunParts(threads, Part);
    }

    private static unsafe void Range(nint xp, WeightView W, nint bp, nint yp, int T, int r0, int r1, nint xqp, nint xdp)
    {
        int O = W.Rows, K = W.Cols;
        float* x = (float*)xp, y = (float*)yp, b = (float*)bp;
        switch (W.Format)
        {
            case WeightFormat.Q8_0:
                int nb = K / Q8Gemv.Block;
                for (int t = 0; t < T; t++)
                {
                    float* yt = y + (long)t * O;
                    Q8Gemv.Rows((byte*)W.Data, K, (sbyte*)xqp + (long)t * K, (float*)xdp + (long)t * nb, yt, r0, r1);
                    if (b != null) for (int o = r0; o < r1; o++) yt[o] += b[o];
                }
                break;
            case WeightFormat.Bf16: Tiles(x, null, (ushort*)W.Data, b, y, T, O, K, r0, r1); break;
            default: Tiles(x, (float*)W.Data, null, b, y, T, O, K, r0, r1); break;
        }
    }

    private static unsafe void Tiles(float* x, float* wf, ushort* wb, float* b, float* y, int T, int O, int K, int r0, int r1)
    {
        // One token of bf16 weights: the unpack kernel wants x in its lane order, permuted once per call.
        float[]? xPerm = null;
        bool use512 = UseAvx512;   // read once: the permutation and the tile must agree
        if (wb != null && T % 2 == 1 && K >= 16 && Avx2.IsSupported && Fma.IsSupported)
        {
            xPerm = System.Buffers.ArrayPool<float>.Shared.Rent(K);
            PermuteForBf16Unpack(x + (long)(T - 1) * K, xPerm, K, use512);
        }
        try
        {
            fixed (float* xp = xPerm)
                for (int o = r0; o < r1; o += 4)
                {
                    int nr = Math.Min(4, r1 - o);
                    int t = 0;
                    for (; t + 2 <= T; t += 2) Tile(x, wf, wb, b, y, T, O, K, o, nr, t, 2);
                    if (t < T)
                    {
                        if (xp != null) TileOneBf16(x, xp, wb, b, y, O, K, o, nr, t, use512);
                        else TileOne(x, wf, wb, b, y, O, K, o, nr, t);
                    }
                }
        }
        finally { if (xPerm != null) System.Buffers.ArrayPool<float>.Shared.Return(xPerm); }
    }

    /// <summary>Per 32 values (AVX-512): the 16 even then the 16 odd positions; then per 16:
    /// [0..3, 8..11, 4..7, 12..15] — the orders in which unpacking bf16 values against zero within 128-bit lanes
    /// yields them as two float32 vectors. The tail past the last 16 is left as is.</summary>
    private static unsafe void PermuteForBf16Unpack(float* x, float[] dst, int K, bool use512)
    {
        int k = 0;
        if (use512)
            for (; k + 32 <= K; k += 32)
                for (int i = 0; i < 16; i++)
                {
                    dst[k + i] = x[k + 2 * i];
                    dst[k + 16 + i] = x[k + 2 * i + 1];
                }
        for (; k + 16 <= K; k += 16)
            for (int i = 0; i < 4; i++)
            {
                dst[k + i] = x[k + i]; dst[k + 4 + i] = x[k + 8 + i];
                dst[k + 8 + i] = x[k + 4 + i]; dst[k + 12 + i] = x[k + 12 + i];
            }
        for (; k < K; k++) dst[k] = x[k];
    }

    /// <summary>Decode tiles use 512-bit vectors where the CPU has AVX-512 (half the loads and FMAs of the 256-bit
    /// loop for the same bytes); tests switch it off to cover the 256-bit path on AVX-512 machines, and
    /// INSTRUCTTUNE_DECODE_AVX512=0 does for an A/B measurement (docs/PERFORMANCE.md).</summary>
    public static bool UseAvx512 { get; set; } = Avx512F.IsSupported && Avx512BW.IsSupported
        && Environment.GetEnvironmentVariable("INSTRUCTTUNE_DECODE_AVX512") != "0";

    /// <summary>TileOne for bf16 weights: one 32-byte load of 16 weights per row, widened by interleaving zero
    /// words below them (the bf16 bits land in the high half of each float32), which costs two shuffles where
    /// zero-extend + shift costs two loads and two shifts. Decode of a cache-resident bf16 model is bound by
    /// these instructions rather than by memory, so it was slower than float32 before this. The 512-bit loop widens
    /// with a shift and an AND instead (session 7, docs/PERFORMANCE.md).</summary>
    private static unsafe void TileOneBf16(float* x, float* xp, ushort* wb, float* b, float* y, int O, int K, int o, int nr, int t, bool use512)
    {
        long w0 = (long)o * K, w1 = (long)(o + Math.Min(1, nr - 1)) * K, w2 = (long)(o + Math.Min(2, nr - 1)) * K, w3 = (long)(o + Math.Min(3, nr - 1)) * K;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default,
            c0 = default, c1 = default, c2 = default, c3 = default;
        var zero = Vector256<ushort>.Zero;
        byte* next = (byte*)(wb + w3 + K);
        bool prefetch = o + 4 < O;
        int k = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (use512 && K >= 32)
        {
            // 32 weights of each row per step: one 64-byte load viewed as 16 uint lanes, each holding an even (low
            // half) and an odd (high half) bf16 weight: even = lane << 16, odd = lane & 0xFFFF0000. A shift and an
            // AND issue on other ports than the unpack shuffles, which bound this loop; x is in even/odd order.
            Vector512<float> A0 = default, A1 = default, A2 = default, A3 = default, C0 = default, C1 = default, C2 = default, C3 = default;
            var hi = Vector512.Create(0xFFFF0000u);
            for (; k + 32 <= K; k += 32)
            {
                if (prefetch) { Sse.Prefetch1(next); Sse.Prefetch1(next + 64); Sse.Prefetch1(next + 128); Sse.Prefetch1(next + 192); next += 256; }
                var v = Vector512.Load(xp + k); var u = Vector512.Load(xp + k + 16);
                var r = Vector512.Load((uint*)(wb + w0 + k));
                A0 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(r, 16).AsSingle(), v, A0); C0 = Avx512F.FusedMultiplyAdd(Avx512F.And(r, hi).AsSingle(), u, C0);
                r = Vector512.Load((uint*)(wb + w1 + k));
                A1 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(r, 16).AsSingle(), v, A1); C1 = Avx512F.FusedMultiplyAdd(Avx512F.And(r, hi).AsSingle(), u, C1);
                r = Vector512.Load((uint*)(wb + w2 + k));
                A2 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(r, 16).AsSingle(), v, A2); C2 = Avx512F.FusedMultiplyAdd(Avx512F.And(r, hi).AsSingle(), u, C2);
                r = Vector512.Load((uint*)(wb + w3 + k));
                A3 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(r, 16).AsSingle(), v, A3); C3 = Avx512F.FusedMultiplyAdd(Avx512F.And(r, hi).AsSingle(), u, C3);
            }
            s0 = Vector512.Sum(A0 + C0); s1 = Vector512.Sum(A1 + C1); s2 = Vector512.Sum(A2 + C2); s3 = Vector512.Sum(A3 + C3);
        }
        for (; k + 16 <= K; k += 16)
        {
            if (prefetch) { Sse.Prefetch1(next); Sse.Prefetch1(next + 64); next += 128; }
            var v = Vector256.Load(xp + k); var u = Vector256.Load(xp + k + 8);
            var r = Vector256.Load(wb + w0 + k);
            a0 = Fma.MultiplyAdd(Avx2.UnpackLow(zero, r).AsSingle(), v, a0); c0 = Fma.MultiplyAdd(Avx2.UnpackHigh(zero, r).AsSingle(), u, c0);
            r = Vector256.Load(wb + w1 + k);
            a1 = Fma.MultiplyAdd(Avx2.UnpackLow(zero, r).AsSingle(), v, a1); c1 = Fma.MultiplyAdd(Avx2.UnpackHigh(zero, r).AsSingle(), u, c1);
            r = Vector256.Load(wb + w2 + k);
            a2 = Fma.MultiplyAdd(Avx2.UnpackLow(zero, r).AsSingle(), v, a2); c2 = Fma.MultiplyAdd(Avx2.UnpackHigh(zero, r).AsSingle(), u, c2);
            r = Vector256.Load(wb + w3 + k);
            a3 = Fma.MultiplyAdd(Avx2.UnpackLow(zero, r).AsSingle(), v, a3); c3 = Fma.MultiplyAdd(Avx2.UnpackHigh(zero, r).AsSingle(), u, c3);
        }
        FinishRows4(x + (long)t * K, null, wb, b, y + (long)t * O, K, o, nr, k, w0, w1, w2, w3,
            s0 + Vector256.Sum(a0 + c0), s1 + Vector256.Sum(a1 + c1), s2 + Vector256.Sum(a2 + c2), s3 + Vector256.Sum(a3 + c3));
    }

    /// <summary>The scalar tail k..K of four row dot products, then bias and store of the nr real rows.</summary>
    private static unsafe void FinishRows4(float* x0, float* wf, ushort* wb, float* b, float* yRow, int K, int o, int nr, int k,
        long w0, long w1, long w2, long w3, float s0, float s1, float s2, float s3)
    {
        for (; k < K; k++)
        {
            float v = x0[k];
            s0 += LoadWScalar(wf, wb, w0 + k) * v; s1 += LoadWScalar(wf, wb, w1 + k) * v;
            s2 += LoadWScalar(wf, wb, w2 + k) * v; s3 += LoadWScalar(wf, wb, w3 + k) * v;
        }
        Span<float> s = [s0, s1, s2, s3];
        for (int i = 0; i < nr; i++) yRow[o + i] = s[i] + (b != null ? b[o + i] : 0f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe Vector256<float> LoadW(float* wf, ushort* wb, long idx)
    {
        if (wf != null) return Vector256.Load(wf + idx);
        // bf16 → f32: zero-extend 8 × u16 to u32 and shift into the high half.
        var u = Avx2.ConvertToVector256Int32(Vector128.Load(wb + idx));
        return Avx2.ShiftLeftLogical(u, 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float LoadWScalar(float* wf, ushort* wb, long idx) =>
        wf != null ? wf[idx] : BitConverter.Int32BitsToSingle(wb[idx] << 16);

    /// <summary>Rows o..o+nr (nr ≤ 4) × tokens t..t+nt (nt ≤ 2).</summary>
    private static unsafe void Tile(float* x, float* wf, ushort* wb, float* b, float* y, int T, int O, int K, int o, int nr, int t, int nt)
    {
        // Missing rows/tokens alias row o / token t; their results are computed and discarded.
        long w0 = (long)o * K, w1 = (long)(o + Math.Min(1, nr - 1)) * K, w2 = (long)(o + Math.Min(2, nr - 1)) * K, w3 = (long)(o + Math.Min(3, nr - 1)) * K;
        float* x0 = x + (long)t * K, x1 = x + (long)(t + nt - 1) * K;
        int k = 0;
        float s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
        if (Avx2.IsSupported && Fma.IsSupported && K >= 8)
        {
            Vector256<float> a00 = default, a01 = default, a10 = default, a11 = default,
                a20 = default, a21 = default, a30 = default, a31 = default;
            for (; k + 8 <= K; k += 8)
            {
                var v0 = Vector256.Load(x0 + k); var v1 = Vector256.Load(x1 + k);
                var r = LoadW(wf, wb, w0 + k); a00 = Fma.MultiplyAdd(r, v0, a00); a01 = Fma.MultiplyAdd(r, v1, a01);
                r = LoadW(wf, wb, w1 + k); a10 = Fma.MultiplyAdd(r, v0, a10); a11 = Fma.MultiplyAdd(r, v1, a11);
                r = LoadW(wf, wb, w2 + k); a20 = Fma.MultiplyAdd(r, v0, a20); a21 = Fma.MultiplyAdd(r, v1, a21);
                r = LoadW(wf, wb, w3 + k); a30 = Fma.MultiplyAdd(r, v0, a30); a31 = Fma.MultiplyAdd(r, v1, a31);
            }
            s00 = Vector256.Sum(a00); s01 = Vector256.Sum(a01); s10 = Vector256.Sum(a10); s11 = Vector256.Sum(a11);
            s20 = Vector256.Sum(a20); s21 = Vector256.Sum(a21); s30 = Vector256.Sum(a30); s31 = Vector256.Sum(a31);
        }
        for (; k < K; k++)
        {
            float v0 = x0[k], v1 = x1[k];
            float r = LoadWScalar(wf, wb, w0 + k); s00 += r * v0; s01 += r * v1;
            r = LoadWScalar(wf, wb, w1 + k); s10 += r * v0; s11 += r * v1;
            r = LoadWScalar(wf, wb, w2 + k); s20 += r * v0; s21 += r * v1;
            r = LoadWScalar(wf, wb, w3 + k); s30 += r * v0; s31 += r * v1;
        }
        Span<float> s = [s00, s10, s20, s30, s01, s11, s21, s31];
        for (int j = 0; j < nt; j++)
            for (int i = 0; i < nr; i++)
                y[(long)(t + j) * O + o + i] = s[j * 4 + i] + (b != null ? b[o + i] : 0f);
    }

    /// <summary>Rows o..o+nr (nr ≤ 4) × one token (decode): two accumulators per row over alternating 8-wide
    /// steps, so 8 FMA chains hide the FMA latency when the weights come from cache.</summary>
    private static unsafe void TileOne(float* x, float* wf, ushort* wb, float* b, float* y, int O, int K, int o, int nr, int t)
    {
        long w0 = (long)o * K, w1 = (long)(o + Math.Min(1, nr - 1)) * K, w2 = (long)(o + Math.Min(2, nr - 1)) * K, w3 = (long)(o + Math.Min(3, nr - 1)) * K;
        float* x0 = x + (long)t * K;
        int k = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Avx2.IsSupported && Fma.IsSupported && K >= 16)
        {
            // The next 4-row block follows this one in memory. Touching its lines at the pace this block is read
            // (into L2) keeps DRAM busy across 4 KiB page boundaries, where the hardware prefetcher stops and a
            // plain stream stalls: L float32 decode went from about 24 to 30+ GB/s with it.
            byte* next = wf != null ? (byte*)(wf + w3 + K) : (byte*)(wb + w3 + K);
            bool prefetch = o + 4 < O, wide = wf != null;
            if (UseAvx512 && wide && K >= 32)
            {
                // float32 at 512 bits: 32 weights of each row per step (512 bytes of the block), 8 FMA chains.
                Vector512<float> A0 = default, A1 = default, A2 = default, A3 = default, C0 = default, C1 = default, C2 = default, C3 = default;
                for (; k + 32 <= K; k += 32)
                {
                    if (prefetch)
                    {
                        Sse.Prefetch1(next); Sse.Prefetch1(next + 64); Sse.Prefetch1(next + 128); Sse.Prefetch1(next + 192);
                        Sse.Prefetch1(next + 256); Sse.Prefetch1(next + 320); Sse.Prefetch1(next + 384); Sse.Prefetch1(next + 448);
                        next += 512;
                    }
                    var v = Vector512.Load(x0 + k); var u = Vector512.Load(x0 + k + 16);
                    A0 = Avx512F.FusedMultiplyAdd(Vector512.Load(wf + w0 + k), v, A0); C0 = Avx512F.FusedMultiplyAdd(Vector512.Load(wf + w0 + k + 16), u, C0);
                    A1 = Avx512F.FusedMultiplyAdd(Vector512.Load(wf + w1 + k), v, A1); C1 = Avx512F.FusedMultiplyAdd(Vector512.Load(wf + w1 + k + 16), u, C1);
                    A2 = Avx512F.FusedMultiplyAdd(Vector512.Load(wf + w2 + k), v, A2); C2 = Avx512F.FusedMultiplyAdd(Vector512.Load(wf + w2 + k + 16), u, C2);
                    A3 = Avx512F.FusedMultiplyAdd(Vector512.Load(wf + w3 + k), v, A3); C3 = Avx512F.FusedMultiplyAdd(Vector512.Load(wf + w3 + k + 16), u, C3);
                }
                s0 = Vector512.Sum(A0 + C0); s1 = Vector512.Sum(A1 + C1); s2 = Vector512.Sum(A2 + C2); s3 = Vector512.Sum(A3 + C3);
            }
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default,
                c0 = default, c1 = default, c2 = default, c3 = default;
            for (; k + 16 <= K; k += 16)
            {
                if (prefetch)
                {
                    // One k step reads 16 weights of each of 4 rows: 256 bytes in float32, 128 in bf16.
                    Sse.Prefetch1(next); Sse.Prefetch1(next + 64);
                    if (wide) { Sse.Prefetch1(next + 128); Sse.Prefetch1(next + 192); next += 256; }
                    else next += 128;
                }
                var v = Vector256.Load(x0 + k); var u = Vector256.Load(x0 + k + 8);
                a0 = Fma.MultiplyAdd(LoadW(wf, wb, w0 + k), v, a0); c0 = Fma.MultiplyAdd(LoadW(wf, wb, w0 + k + 8), u, c0);
                a1 = Fma.MultiplyAdd(LoadW(wf, wb, w1 + k), v, a1); c1 = Fma.MultiplyAdd(LoadW(wf, wb, w1 + k + 8), u, c1);
                a2 = Fma.MultiplyAdd(LoadW(wf, wb, w2 + k), v, a2); c2 = Fma.MultiplyAdd(LoadW(wf, wb, w2 + k + 8), u, c2);
                a3 = Fma.MultiplyAdd(LoadW(wf, wb, w3 + k), v, a3); c3 = Fma.MultiplyAdd(LoadW(wf, wb, w3 + k + 8), u, c3);
            }
            s0 += Vector256.Sum(a0 + c0); s1 += Vector256.Sum(a1 + c1); s2 += Vector256.Sum(a2 + c2); s3 += Vector256.Sum(a3 + c3);
        }
        FinishRows4(x0, wf, wb, b, y + (long)t * O, K, o, nr, k, w0, w1, w2, w3, s0, s1, s2, s3);
    }

    /// <summary>The definition, in double precision: the test oracle.</summary>
    public static void ForwardNaive(ReadOnlySpan<float> X, in WeightView W, ReadOnlySpan<float> bias, Span<float> Y, int T)
    {
        int O = W.Rows, K = W.Cols;
        var w = new float[K];
        for (int o = 0; o < O; o++)
        {
            W.RowToF32(o, w);
            for (int t = 0; t < T; t++)
            {
                double acc = bias.Length == 0 ? 0 : bias[o];
                for (int k = 0; k < K; k++) acc += (double)X[t * K + k] * w[k];
                Y[t * O + o] = (float)acc;
            }
        }
    }
}
