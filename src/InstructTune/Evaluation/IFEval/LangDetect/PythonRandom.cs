namespace InstructTune.Evaluation.IFEval.LangDetect;

/// <summary>
/// CPython's <c>random.Random</c> for the calls langdetect makes: integer seeding (<c>init_by_array</c> over
/// the 32-bit words of |seed|), <c>random()</c> (53-bit double from two MT19937 outputs), <c>gauss</c>
/// (Box–Muller with the cached second value) and <c>choice</c> (rejection sampling on <c>getrandbits</c>).
/// With the same seed it yields the very numbers Python does, so a seeded detection matches bit for bit.
/// </summary>
public sealed class PythonRandom
{
    private const int N = 624, M = 397;
    private readonly uint[] _mt = new uint[N];
    private int _mti = N + 1;
    private double? _gaussNext;
    private const double TwoPi = 2.0 * Math.PI; // Python's TWOPI constant, folded once

    public PythonRandom(ulong seed) => Seed(seed);

    /// <summary><c>random.seed(n)</c> for a non-negative integer n (also clears the cached Gaussian).</summary>
    public void Seed(ulong seed)
    {
        // Key = 32-bit words of the seed, least significant first; 0 gives the single word 0.
        uint[] key = seed >> 32 == 0 ? [(uint)seed] : [(uint)seed, (uint)(seed >> 32)];
        InitByArray(key);
        _gaussNext = null;
    }

    private void InitGenrand(uint s)
    {
        _mt[0] = s;
        for (_mti = 1; _mti < N; _mti++)
            _mt[_mti] = 1812433253u * (_mt[_mti - 1] ^ (_mt[_mti - 1] >> 30)) + (uint)_mti;
    }

    private void InitByArray(uint[] key)
    {
        InitGenrand(19650218u);
        int i = 1, j = 0;
        for (int k = Math.Max(N, key.Length); k > 0; k--)
        {
            _mt[i] = (_mt[i] ^ ((_mt[i - 1] ^ (_mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint)j;
            i++; j++;
            if (i >= N) { _mt[0] = _mt[N - 1]; i = 1; }
            if (j >= key.Length) j = 0;
        }
        for (int k = N - 1; k > 0; k--)
        {
            _mt[i] = (_mt[i] ^ ((_mt[i - 1] ^ (_mt[i - 1] >> 30)) * 1566083941u)) - (uint)i;
            i++;
            if (i >= N) { _mt[0] = _mt[N - 1]; i = 1; }
        }
        _mt[0] = 0x80000000u;
    }

    /// <summary>The next raw 32-bit MT19937 output.</summary>
    public uint NextUInt32()
    {
        if (_mti >= N)
        {
            int kk;
            for (kk = 0; kk < N - M; kk++) Twist(kk, kk + M);
            for (; kk < N - 1; kk++) Twist(kk, kk + (M - N));
            uint y = (_mt[N - 1] & 0x80000000u) | (_mt[0] & 0x7fffffffu);
            _mt[N - 1] = _mt[M - 1] ^ (y >> 1) ^ ((y & 1u) != 0 ? 0x9908b0dfu : 0u);
            _mti = 0;
        }
        uint r = _mt[_mti++];
        r ^= r >> 11;
        r ^= (r << 7) & 0x9d2c5680u;
        r ^= (r << 15) & 0xefc60000u;
        r ^= r >> 18;
        return r;
    }

    private void Twist(int kk, int other)
    {
        uint y = (_mt[kk] & 0x80000000u) | (_mt[kk + 1] & 0x7fffffffu);
        _mt[kk] = _mt[other] ^ (y >> 1) ^ ((y & 1u) != 0 ? 0x9908b0dfu : 0u);
    }

    /// <summary><c>random.random()</c>: uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble()
    {
        uint a = NextUInt32() >> 5, b = NextUInt32() >> 6;
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    }

    /// <summary><c>random.gauss(mu, sigma)</c>.</summary>
    public double Gauss(double mu, double sigma)
    {
        double z;
        if (_gaussNext is { } cached)
        {
            z = cached;
            _gaussNext = null;
        }
        else
        {
            double x2pi = NextDouble() * TwoPi;
            double g2rad = Math.Sqrt(-2.0 * Math.Log(1.0 - NextDouble()));
            z = Math.Cos(x2pi) * g2rad;
            _gaussNext = Math.Sin(x2pi) * g2rad;
        }
        return mu + z * sigma;
    }

    /// <summary><c>random.getrandbits(k)</c> for 1 ≤ k ≤ 32.</summary>
    private uint GetRandBits(int k) => NextUInt32() >> (32 - k);

    /// <summary><c>random._randbelow(n)</c>: uniform in [0, n) by rejection on the bit length of n.</summary>
    public int RandBelow(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), "choice from an empty sequence");
        int k = 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)n);
        uint r = GetRandBits(k);
        while (r >= (uint)n) r = GetRandBits(k);
        return (int)r;
    }
}
