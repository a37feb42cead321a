using InstructTune.Engine.Tensors;

namespace InstructTune.Engine.Tests.Tensors;

public class BFloat16Tests
{
    [Theory]
    // Hand-worked round-to-nearest-even cases (bits of the float32 → expected bf16 bits).
    [InlineData(0x3F800000u, (ushort)0x3F80)] // 1.0 exact
    [InlineData(0x3F808000u, (ushort)0x3F80)] // tie, kept bit even → down
    [InlineData(0x3F818000u, (ushort)0x3F82)] // tie, kept bit odd → up to even
    [InlineData(0x3F808001u, (ushort)0x3F81)] // just above the tie → up
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)] // float max rounds to +Inf
    [InlineData(0xFF800000u, (ushort)0xFF80)] // −Inf
    [InlineData(0x00000001u, (ushort)0x0000)] // smallest subnormal rounds to +0
    [InlineData(0x80018000u, (ushort)0x8002)] // negative subnormal tie → even
    [InlineData(0x7FC00001u, (ushort)0xFFFF)] // NaN payload → 0xFFFF (torch tensor conversion)
    [InlineData(0x7F800001u, (ushort)0xFFFF)] // signalling NaN → 0xFFFF, never rounded up into Inf
    public void RoundsToNearestEven(uint floatBits, ushort expected)
    {
        Assert.Equal(expected, BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(floatBits)));
    }

    [Fact]
    public void WideningIsExact()
    {
        for (int b = 0; b < 65536; b += 7)
        {
            float f = BFloat16.ToFloat((ushort)b);
            if (!float.IsNaN(f)) Assert.Equal((ushort)b, BFloat16.FromFloat(f));
        }
    }
}

/// <summary>float32 → bf16 bit-identical to torch's .to(torch.bfloat16) on tricky and random values (fixtures/engine/bf16.json).</summary>
public class BFloat16GoldenTests
{
    [Fact]
    public void MatchesTorchBitForBit()
    {
        var root = Fixture.Load("bf16.json");
        var f = root.GetProperty("float_bits").EnumerateArray().Select(x => x.GetUInt32()).ToArray();
        var b = root.GetProperty("bf16_bits").EnumerateArray().Select(x => (ushort)x.GetInt32()).ToArray();
        for (int i = 0; i < f.Length; i++)
            Assert.True(b[i] == BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(f[i])), $"0x{f[i]:X8}: torch 0x{b[i]:X4}, ours 0x{BFloat16.FromFloat(BitConverter.UInt32BitsToSingle(f[i])):X4}");
    }
}
