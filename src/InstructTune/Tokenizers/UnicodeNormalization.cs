using System.IO.Compression;
using System.Text;

namespace InstructTune.Tokenizers;

/// <summary>
/// NFC / NFD / NFKC / NFKD (UAX #15) from our own tables, because string.Normalize does nothing under
/// InvariantGlobalization, which the solution builds with. Decompose fully (Hangul algorithmically), put combining
/// marks in canonical order, then (C forms) compose each unblocked mark with the last starter.
/// </summary>
internal static class UnicodeNormalization
{
    private sealed class Tables
    {
        public readonly Dictionary<int, int[]> Canonical = new(), Compat = new();
        public readonly Dictionary<int, byte> Ccc = new();
        public readonly Dictionary<long, int> Compose = new();
        public readonly HashSet<int> Seconds = new(); // code points that compose with what precedes them
    }

    private static readonly Lazy<Tables> Data = new(Load);

    private static Tables Load()
    {
        var t = new Tables();
        using var z = new DeflateStream(new MemoryStream(Convert.FromBase64String(UnicodeNormalizationData.Deflated)), CompressionMode.Decompress);
        using var r = new StreamReader(z, System.Text.Encoding.UTF8);
        while (r.ReadLine() is { } line)
        {
            var f = line.Split(' ');
            var v = f.Skip(1).Select(x => Convert.ToInt32(x, 16)).ToArray();
            switch (f[0])
            {
                case "D": t.Canonical[v[0]] = v[1..]; break;
                case "K": t.Compat[v[0]] = v[1..]; break;
                case "C": t.Ccc[v[0]] = (byte)Convert.ToInt32(f[2], 10); break;
                case "P": t.Compose[((long)v[0] << 21) | (uint)v[1]] = v[2]; t.Seconds.Add(v[1]); break;
            }
        }
        return t;
    }

    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, LCount = 19, VCount = 21, TCount = 28;
    private const int NCount = VCount * TCount, SCount = LCount * NCount;

    /// <summary>True when no character can change: everything below U+0300 (C forms) or U+00A0 (K forms).</summary>
    public static bool IsTriviallyNormalized(ReadOnlySpan<char> s, NormalizationForm form)
    {
        int limit = form is NormalizationForm.FormC or NormalizationForm.FormD ? 0x300 : 0xA0;
        if (form == NormalizationForm.FormD) limit = 0xC0;
        foreach (var c in s) if (c >= limit) return false;
        return true;
    }

    /// <summary>True when cp may reorder or compose with the character before it under this form: its
    /// decomposition starts with a non-starter, a composition's second element, or a Hangul vowel/trailing jamo.
    /// Text is normalized in clusters cut before every other character.</summary>
    public static bool AttachesToPrevious(int cp, NormalizationForm form)
    {
        if (cp < 0x300) return false;
        if (cp is >= VBase and < VBase + VCount or > TBase and < TBase + TCount) return true;
        var t = Data.Value;
        int first = cp;
        if (form is NormalizationForm.FormKC or NormalizationForm.FormKD && t.Compat.TryGetValue(cp, out var k)) first = k[0];
        else if (t.Canonical.TryGetValue(cp, out var d)) first = d[0];
        return Ccc(first, t) != 0 || t.Seconds.Contains(first);
    }

    public static string Normalize(ReadOnlySpan<char> s, NormalizationForm form)
    {
        var t = Data.Value;
        bool compat = form is NormalizationForm.FormKC or NormalizationForm.FormKD;
        var cps = new List<int>(s.Length + 4);
        for (int i = 0; i < s.Length;)
        {
            int cp = UnicodeClass.CodePointAt(s, i, out int n);
            i += n;
            Decompose(cp, compat, t, cps);
        }
        // Canonical ordering: stable sort of each run of non-starters by combining class.
        for (int i = 1; i < cps.Count; i++)
        {
            int cc = Ccc(cps[i], t);
            if (cc == 0) continue;
            for (int j = i; j > 0; j--)
            {
                int prev = Ccc(cps[j - 1], t);
                if (prev <= cc) break;
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
            }
        }
        if (form is NormalizationForm.FormC or NormalizationForm.FormKC) cps = Compose(cps, t);
        var sb = new StringBuilder(cps.Count + 4);
        foreach (var cp in cps) sb.Append(char.ConvertFromUtf32(cp is >= 0xD800 and <= 0xDFFF ? 0xFFFD : cp));
        return sb.ToString();
    }

    private static int Ccc(int cp, Tables t) => t.Ccc.TryGetValue(cp, out var c) ? c : 0;

    private static void Decompose(int cp, bool compat, Tables t, List<int> output)
    {
        if (cp is >= SBase and < SBase + SCount)
        {
            int si = cp - SBase;
            output.Add(LBase + si / NCount);
            output.Add(VBase + si % NCount / TCount);
            if (si % TCount != 0) output.Add(TBase + si % TCount);
            return;
        }
        if (compat && t.Compat.TryGetValue(cp, out var k)) { output.AddRange(k); return; }
        if (t.Canonical.TryGetValue(cp, out var d)) { output.AddRange(d); return; }
        output.Add(cp);
    }

    private static List<int> Compose(List<int> cps, Tables t)
    {
        var result = new List<int>(cps.Count);
        int starter = -1;
        foreach (var ch in cps)
        {
            int cc = Ccc(ch, t);
            if (starter >= 0)
            {
                bool adjacent = result.Count - 1 == starter;
                int lastCc = adjacent ? -1 : Ccc(result[^1], t);
                bool blocked = !adjacent && (lastCc == 0 || lastCc >= cc);
                if (!blocked && TryCompose(result[starter], ch, t, out int composite))
                {
                    result[starter] = composite;
                    continue;
                }
            }
            if (cc == 0) starter = result.Count;
            result.Add(ch);
        }
        return result;
    }

    private static bool TryCompose(int a, int b, Tables t, out int c)
    {
        if (a is >= LBase and < LBase + LCount && b is >= VBase and < VBase + VCount)
        {
            c = SBase + ((a - LBase) * VCount + (b - VBase)) * TCount; return true;
        }
        if (a is >= SBase and < SBase + SCount && (a - SBase) % TCount == 0 && b is > TBase and < TBase + TCount)
        {
            c = a + (b - TBase); return true;
        }
        return t.Compose.TryGetValue(((long)a << 21) | (uint)b, out c);
    }
}
