// Seeded, reproducible random numbers: xoshiro256** seeded through SplitMix64. Normal samples use the
// Box–Muller transform. The whole state is four ulongs (State), so a checkpoint can save and restore it.
namespace InstructTune.Engine.Tensors;

public sealed class Rng
{
    private ulong s0, s1, s2, s3;

    public Rng(ulong seed)
    {
        ulong x = seed;
        s0 = SplitMix(ref x); s1 = SplitMix(ref x); s2 = SplitMix(ref x); s3 = SplitMix(ref x);
    }

    /// <summary>The generator state, for checkpoints.</summary>
    public ulong[] State
    {
        get => [s0, s1, s2, s3];
        set
        {
            if (value.Length != 4) throw new ArgumentException("Rng.State needs 4 values");
            (s0, s1, s2, s3) = (value[0], value[1], value[2], value[3]);
        }
    }

    public ulong NextUInt64()
    {
        ulong result = RotL(s1 * 5, 7) * 9;
        ulong t = s1 << 17;
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = RotL(s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 24 random bits (every float in the grid equally likely).</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1f / (1 << 24));

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        return (int)((NextUInt64() >> 33) % (ulong)n);
    }

    public void Uniform(Span<float> dst, float low = 0, float high = 1)
    {
        for (int i = 0; i < dst.Length; i++) dst[i] = low + (high - low) * NextFloat();
    }

    public void Normal(Span<float> dst, float mean = 0, float std = 1)
    {
        for (int i = 0; i < dst.Length; i += 2)
        {
            double u1 = 1.0 - NextDouble(), u2 = NextDouble(); // u1 in (0, 1]: log is finite
            double r = Math.Sqrt(-2.0 * Math.Log(u1));
            dst[i] = (float)(mean + std * r * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < dst.Length) dst[i + 1] = (float)(mean + std * r * Math.Sin(2 * Math.PI * u2));
        }
    }

    /// <summary>Dropout mask: keep with probability 1−p, kept entries hold 1/(1−p), dropped ones 0.</summary>
    public void DropoutMask(Span<float> mask, float p)
    {
        if (p < 0 || p >= 1) throw new ArgumentOutOfRangeException(nameof(p), $"dropout probability {p} must be in [0, 1)");
        float scale = 1f / (1f - p);
        for (int i = 0; i < mask.Length; i++) mask[i] = NextFloat() >= p ? scale : 0f;
    }

    private static ulong RotL(ulong x, int k) => (x << k) | (x >> (64 - k));

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
