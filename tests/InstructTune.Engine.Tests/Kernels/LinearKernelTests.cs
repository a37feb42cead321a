// The inference linear kernel (Engine/Kernels/LinearKernel.cs: decode GEMV tiles at 512 and 256 bits, q8_0 rows,
// the packed GEMM for prompts) against its naive double-precision twin on awkward shapes, for float32, bf16 and
// q8_0 weights given as WeightViews over pinned arrays.
using System.Runtime.InteropServices;
using InstructTune.Engine.Kernels;
using InstructTune.Engine.Quantization;
using InstructTune.Engine.Tensors;
using static InstructTune.Engine.Tests.GemmTestSupport;

namespace InstructTune.Engine.Tests.Kernels;

public class LinearKernelTests
{
    /// <summary>W [O, K] stored in <paramref name="format"/> in a pinned array (kept alive by the returned owner).</summary>
    private static (WeightView View, Array Owner) Store(float[] w, int O, int K, WeightFormat format)
    {
        Array owner;
        switch (format)
        {
            case WeightFormat.Bf16:
                var b = GC.AllocateArray<ushort>(Math.Max(1, O * K), pinned: true);
                BFloat16.FromFloat(w, b.AsSpan(0, O * K));
                owner = b; break;
            case WeightFormat.Q8_0:
                var q = GC.AllocateArray<byte>((int)Q8_0.ByteCount((long)O * K), pinned: true);
                Q8_0.Quantize(w, q);
                owner = q; break;
            default:
                var f = GC.AllocateArray<float>(Math.Max(1, O * K), pinned: true);
                w.CopyTo(f, 0);
                owner = f; break;
        }
        return (new WeightView(Marshal.UnsafeAddrOfPinnedArrayElement(owner, 0), O, K, format), owner);
    }

    /// <summary>float32/bf16: rounding of float32 dot products. q8_0 decode also quantises x per block of 32
    /// (each term moves by at most |w|·max|x_block|/254), which the double twin on float x does not.</summary>
    private static void AssertNear(float[] expected, float[] actual, WeightView W, float[] x, int T, string what)
    {
        int O = W.Rows, K = W.Cols;
        var row = new float[K];
        for (int o = 0; o < O; o++)
        {
            W.RowToF32(o, row);
            double absW = row.Sum(v => Math.Abs((double)v));
            for (int t = 0; t < T; t++)
            {
                double tol = 1e-5 * Math.Sqrt(K) * (1 + Math.Abs(expected[t * O + o]));
                if (W.Format == WeightFormat.Q8_0 && T < LinearKernel.GemmMinTokens)
                    tol += absW * x.Skip(t * K).Take(K).Max(v => Math.Abs(v)) / 254 + 1e-4;
                Assert.True(Math.Abs(expected[t * O + o] - actual[t * O + o]) <= tol,
                    $"{what}: y[{t},{o}] = {actual[t * O + o]}, naive {expected[t * O + o]} (tolerance {tol:G3})");
            }
        }
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1, 7, 63)]
    [InlineData(3, 65, 7)]
    [InlineData(2, 257, 65)]
    [InlineData(5, 1000, 33)]
    [InlineData(1, 300, 1000)]   // above the parallel threshold
    [InlineData(1, 5, 16)]
    [InlineData(3, 9, 47)]       // odd token count: pairs then a single-token tile
    [InlineData(7, 63, 257)]
    [InlineData(8, 65, 63)]      // GEMM path from 8 tokens on
    [InlineData(33, 257, 100)]
    [InlineData(1, 13, 48)]      // one 512-bit step, then one 256-bit step
    [InlineData(1, 300, 1008)]   // 512-bit steps, a 256-bit step, parallel
    [InlineData(1, 6, 1031)]     // 512-bit steps, a 256-bit step and a scalar tail
    [InlineData(1, 301, 256)]    // q8_0: rows not a multiple of 4, parallel
    [InlineData(9, 70, 64)]      // q8_0 prompt: dequantised slabs into the GEMM
    public void Forward_matches_naive_twin(int T, int O, int K)
    {
        bool saved = LinearKernel.UseAvx512;
        try
        {
            foreach (bool wide in System.Runtime.Intrinsics.X86.Avx512BW.IsSupported ? new[] { true, false } : [false])
            {
                LinearKernel.UseAvx512 = wide;
                var x = Random(T * K, T * 1000 + O + K);
                var w = Random(O * K, O + 7 * K);
                var bias = Random(O, O + 3);
                foreach (var format in K % Q8_0.BlockSize == 0 ? new[] { WeightFormat.F32, WeightFormat.Bf16, WeightFormat.Q8_0 } : [WeightFormat.F32, WeightFormat.Bf16])
                {
                    var (W, owner) = Store(w, O, K, format);
                    foreach (var b in new[] { bias, Array.Empty<float>() })
                    {
                        var y = new float[T * O];
                        var yn = new float[T * O];
                        LinearKernel.Forward(x, W, b, y, T);
                        LinearKernel.ForwardNaive(x, W, b, yn, T);
                        AssertNear(yn, y, W, x, T, $"T={T} O={O} K={K} {format} avx512={wide} bias={b.Length != 0}");
                    }
                    GC.KeepAlive(owner);
                }
            }
        }
        finally { LinearKernel.UseAvx512 = saved; }
    }

    [Theory]
    [InlineData(1, 64)]
    [InlineData(3, 320)]     // above the parallel threshold: blocks of three matrices split across threads
    [InlineData(9, 64)]      // GEMM path
    public void Forward_many_matches_naive_per_product(int T, int K)
    {
        var x = Random(T * K, T + K);
        int[] rows = [K, 7, 257];
        WeightFormat[] formats = [WeightFormat.F32, WeightFormat.Bf16, WeightFormat.F32];
        // q8_0 products are quantised against one shared quantised x: mix one in.
        var owners = new List<Array>();
        var products = rows.Select((o, i) =>
        {
            var (view, owner) = Store(Random(o * K, 100 + i), o, K, i == 2 ? WeightFormat.Q8_0 : formats[i]);
            owners.Add(owner);
            return (W: view, Bias: i == 2 ? null : Random(o, 200 + i), Y: new float[T * o]);
        }).ToArray();
        LinearKernel.ForwardMany(x, T, products.Select(p => (p.W, p.Bias, p.Y)).ToArray());
        foreach (var (w, b, y) in products)
        {
            var yn = new float[y.Length];
            LinearKernel.ForwardNaive(x, w, b ?? [], yn, T);
            AssertNear(yn, y, w, x, T, $"rows {w.Rows} {w.Format}");
        }
        GC.KeepAlive(owners);
    }

    [Fact]
    public void Row_to_f32_reads_each_format_exactly()
    {
        // bf16 0x3FC0 = 1.5, 0xC020 = -2.5; q8_0 block: scale half 0x3800 = 0.5, quants 1..32 → 0.5..16.
        var bf = GC.AllocateArray<ushort>(4, pinned: true);
        bf[0] = 0x3FC0; bf[1] = 0xC020; bf[2] = 0; bf[3] = 0x3F80;
        var v = new WeightView(Marshal.UnsafeAddrOfPinnedArrayElement(bf, 0), 2, 2, WeightFormat.Bf16);
        var row = new float[2];
        v.RowToF32(0, row); Assert.Equal([1.5f, -2.5f], row);
        v.RowToF32(1, row); Assert.Equal([0f, 1f], row);
        var q = GC.AllocateArray<byte>(34, pinned: true);
        q[0] = 0x00; q[1] = 0x38;
        for (int j = 0; j < 32; j++) q[2 + j] = (byte)(j + 1);
        var qv = new WeightView(Marshal.UnsafeAddrOfPinnedArrayElement(q, 0), 1, 32, WeightFormat.Q8_0);
        var qr = new float[32];
        qv.RowToF32(0, qr);
        Assert.Equal(Enumerable.Range(1, 32).Select(j => 0.5f * j), qr);
        Assert.Throws<ArgumentOutOfRangeException>(() => qv.RowToF32(1, qr));
    }

    [Fact]
    public void Refuses_shapes_that_do_not_fit()
    {
        var (W, owner) = Store(Random(6, 1), 2, 3, WeightFormat.F32);
        var e = Assert.Throws<ArgumentException>(() => LinearKernel.Forward(new float[3], W, [], new float[1], 1));
        Assert.Contains("do not fit", e.Message);
        e = Assert.Throws<ArgumentException>(() => LinearKernel.Forward(new float[3], W, new float[3], new float[2], 1));
        Assert.Contains("bias 3", e.Message);
        e = Assert.Throws<ArgumentException>(() => new WeightView(1, 2, 33, WeightFormat.Q8_0));
        Assert.Contains("multiple of 32", e.Message);
        GC.KeepAlive(owner);
    }
}
