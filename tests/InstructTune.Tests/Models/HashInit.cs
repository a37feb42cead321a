using InstructTune.Engine.Modules;

namespace InstructTune.Tests.Models;

/// <summary>
/// The weight generator of tools/golden/engine_common.py (hash_uniform, SplitMix64 of the element index seeded by
/// FNV-1a of the parameter name), reimplemented bit for bit so golden weights need not be stored.
/// </summary>
public static class HashInit
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    public static ulong Fnv1a64(string s)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(s)) { h ^= b; h = unchecked(h * 0x100000001B3UL); }
        return h;
    }

    public static float[] Uniform(ulong seed, int n)
    {
        var v = new float[n];
        ulong start = unchecked(seed * Golden + Golden);
        for (int i = 0; i < n; i++)
        {
            ulong z = unchecked(start + (ulong)i);
            z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
            z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
            z ^= z >> 31;
            v[i] = (float)(z >> 40) / (1 << 23) - 1f;
        }
        return v;
    }

    /// <summary>Fills every parameter as engine_llama.py's init_param does.</summary>
    public static void Initialize(Module model)
    {
        foreach (var (name, p) in model.NamedParameters())
        {
            var u = Uniform(Fnv1a64(name), p.Length);
            if (name.EndsWith("norm.weight")) for (int i = 0; i < u.Length; i++) u[i] = 1f + 0.25f * u[i];
            else if (name.EndsWith(".bias")) for (int i = 0; i < u.Length; i++) u[i] = 0.1f * u[i];
            else if (!name.EndsWith("embed_tokens.weight"))
            {
                float scale = (float)(1.0 / Math.Sqrt(p.Size(1)));
                for (int i = 0; i < u.Length; i++) u[i] *= scale;
            }
            p.Load(u);
        }
    }

    /// <summary>(‖g‖, g·r₁, g·r₂) with the script's hashed projection vectors, in double.</summary>
    public static (double Norm, double P1, double P2) Summary(string name, float[] g)
    {
        var r1 = Uniform(Fnv1a64(name) ^ 0x1234567UL, g.Length);
        var r2 = Uniform(Fnv1a64(name) ^ 0x7654321UL, g.Length);
        double n = 0, p1 = 0, p2 = 0;
        for (int i = 0; i < g.Length; i++) { n += (double)g[i] * g[i]; p1 += (double)g[i] * r1[i]; p2 += (double)g[i] * r2[i]; }
        return (Math.Sqrt(n), p1, p2);
    }
}
