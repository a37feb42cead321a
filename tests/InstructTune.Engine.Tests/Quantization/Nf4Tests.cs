using System.Runtime.InteropServices;
using System.Text.Json;
using InstructTune.Engine.Quantization;

namespace InstructTune.Engine.Tests.Quantization;

/// <summary>NF4 against tools/golden/nf4_golden.py (independent numpy implementation of the QLoRA paper's
/// algorithm and bitsandbytes' published constants), plus the QLoRA storage bound.</summary>
public class Nf4Tests
{
    private static T[] Read<T>(string name) where T : struct =>
        MemoryMarshal.Cast<byte, T>(File.ReadAllBytes(TestPaths.Fixtures("quant", name))).ToArray();

    private static JsonElement Meta() =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("quant", "nf4_meta.json"))).RootElement;

    [Fact]
    public void CodeTableIsBitsandbytesPublishedTableAndTheNormalQuantiles()
    {
        var meta = Meta();
        var published = meta.GetProperty("published_nf4").EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
        var derived = meta.GetProperty("derived_nf4").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(published, Nf4.CodeTable.ToArray());
        for (int i = 0; i < 16; i++) Assert.True(Math.Abs(derived[i] - Nf4.CodeTable[i]) < 1e-6, $"level {i}");
        // Hand-checked anchors of the table: an exact zero at 7, ±1 at the ends, one more positive level.
        Assert.Equal(0f, Nf4.CodeTable[7]);
        Assert.Equal(-1f, Nf4.CodeTable[0]);
        Assert.Equal(1f, Nf4.CodeTable[15]);
    }

    [Fact]
    public void DynamicMapMatchesReference()
    {
        var expected = Meta().GetProperty("dynamic_map").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(256, Nf4.DynamicMap.Length);
        for (int i = 0; i < 256; i++)
            // Within one float32 ulp: the map is built in float32 by both sides with different rounding order.
            Assert.True(Math.Abs(expected[i] - Nf4.DynamicMap[i]) <= 1.2e-7 * Math.Max(1e-6, Math.Abs(expected[i])) + 1e-12,
                $"dynamic[{i}] = {Nf4.DynamicMap[i]}, expected {expected[i]}");
    }

    [Fact]
    public void QuantiseAndDequantiseMatchGolden()
    {
        var meta = Meta();
        int rows = meta.GetProperty("rows").GetInt32(), cols = meta.GetProperty("cols").GetInt32();
        var w = Read<float>("nf4_input.f32");
        var q = Nf4Matrix.Quantize(w, rows, cols);

        Assert.Equal(Read<byte>("nf4_codes.u8"), q.Codes);
        Assert.Equal((float)meta.GetProperty("offset").GetDouble(), q.ScaleOffset);
        Assert.Equal(Read<float>("nf4_absmax2.f32"), q.ScaleAbsmax);
        Assert.Equal(Read<byte>("nf4_qscales.u8"), q.QuantizedScales);

        var expected = Read<float>("nf4_dequant.f32");
        var deq = new float[rows * cols];
        q.Dequantize(deq);
        for (int i = 0; i < deq.Length; i++)
            Assert.True(Math.Abs(expected[i] - deq[i]) <= 1e-6f * Math.Abs(expected[i]), $"w[{i}] = {deq[i]}, expected {expected[i]}");

        // Double quantisation keeps each block scale close to the fp32 absmax it replaces.
        var absmax = Read<float>("nf4_absmax.f32");
        var scales = new float[q.Blocks];
        q.DecodeScales(scales);
        for (int b = 0; b < q.Blocks; b++) Assert.True(Math.Abs(scales[b] - absmax[b]) <= 0.02f * absmax.Max(), $"block {b}");
    }

    [Fact]
    public void PackingPutsTheEvenIndexInTheHighNibble()
    {
        // Hand-worked: block absmax 1 → values are their own normalised codes.
        float[] w = new float[64];
        w[0] = -1f; w[1] = 1f; w[2] = 0f; w[3] = 0.5626170039176941f;
        var q = Nf4Matrix.Quantize(w, 1, 64);
        Assert.Equal(0x0F, q.Codes[0]);   // code 0 (−1) high, code 15 (+1) low
        Assert.Equal(0x7D, q.Codes[1]);   // code 7 (0) high, code 13 (0.5626) low
    }

    [Fact]
    public void FrozenWeightsTakeAtMostSixTenthsOfAByte()
    {
        var w = GemmTestSupport.Random(2048 * 768, 7);
        var q = Nf4Matrix.Quantize(w, 2048, 768);
        double bytesPerParam = (double)q.StorageBytes / q.Count;
        Assert.True(bytesPerParam <= 0.6, $"{bytesPerParam:F4} bytes/parameter");
        // 4 bits + 8 bits / 64 + 32 bits / (64·256): 0.5 + 0.015625 + 0.000244 ≈ 0.5159.
        Assert.InRange(bytesPerParam, 0.515, 0.517);
    }

    [Fact]
    public void ShapeErrorsNameTheShape()
    {
        var ex = Assert.Throws<ArgumentException>(() => Nf4Matrix.Quantize(new float[10], 3, 4));
        Assert.Contains("[3×4]", ex.Message);
    }
}
