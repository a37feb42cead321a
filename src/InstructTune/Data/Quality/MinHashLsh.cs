namespace InstructTune.Data.Quality;

/// <summary>
/// Near-duplicate detection with MinHash signatures and LSH banding (Broder 1997; Leskovec et al., Mining of
/// Massive Datasets ch. 3). Each text becomes a set of word n-gram shingles; its signature keeps, for each of
/// <c>bands × rows</c> hash functions, the minimum hash over its shingles, so two signatures agree in a position
/// with probability equal to the sets' Jaccard similarity. Texts sharing any band are candidates; a candidate is a
/// duplicate when the signature agreement (the Jaccard estimate) reaches the threshold.
/// </summary>
public sealed class MinHashLsh
{
    private readonly int _bands, _rows, _shingle;
    private readonly double _threshold;
    private readonly ulong[] _seeds;
    private readonly Dictionary<ulong, List<int>>[] _buckets;
    private readonly List<ulong[]> _signatures = [];

    public MinHashLsh(double threshold = 0.8, int bands = 16, int rows = 8, int shingleWords = 3, int seed = 1)
    {
        _threshold = threshold;
        _bands = bands;
        _rows = rows;
        _shingle = shingleWords;
        var rng = new Random(seed);
        _seeds = Enumerable.Range(0, bands * rows).Select(_ => (ulong)rng.NextInt64() | 1).ToArray();
        _buckets = Enumerable.Range(0, bands).Select(_ => new Dictionary<ulong, List<int>>()).ToArray();
    }

    public ulong[] Signature(string text)
    {
        var words = TextNormalizer.Words(text);
        var sig = new ulong[_seeds.Length];
        Array.Fill(sig, ulong.MaxValue);
        int n = Math.Max(1, words.Length - _shingle + 1);
        for (int i = 0; i < n; i++)
        {
            var shingle = string.Join(' ', words, i, Math.Min(_shingle, words.Length - i));
            ulong h = TextNormalizer.Hash64(shingle);
            for (int k = 0; k < sig.Length; k++)
            {
                ulong v = TextNormalizer.Mix(h ^ _seeds[k]);
                if (v < sig[k]) sig[k] = v;
            }
        }
        return sig;
    }

    public static double EstimateJaccard(ulong[] a, ulong[] b)
    {
        int same = 0;
        for (int i = 0; i < a.Length; i++) if (a[i] == b[i]) same++;
        return (double)same / a.Length;
    }

    /// <summary>Returns the index of an earlier text this one nearly duplicates, or −1 after adding it to the index.</summary>
    public int AddOrFindDuplicate(string text)
    {
        var sig = Signature(text);
        var keys = new ulong[_bands];
        for (int b = 0; b < _bands; b++)
        {
            ulong h = 1469598103934665603UL;
            for (int r = 0; r < _rows; r++) h = TextNormalizer.Mix(h ^ sig[b * _rows + r]);
            keys[b] = h;
            if (_buckets[b].TryGetValue(h, out var list))
                foreach (var other in list)
                    if (EstimateJaccard(sig, _signatures[other]) >= _threshold) return other;
        }
        int id = _signatures.Count;
        _signatures.Add(sig);
        for (int b = 0; b < _bands; b++)
        {
            if (!_buckets[b].TryGetValue(keys[b], out var list)) _buckets[b][keys[b]] = list = [];
            list.Add(id);
        }
        return -1;
    }

    /// <summary>Exact Jaccard similarity of the two texts' shingle sets (the quantity MinHash estimates).</summary>
    public double ExactJaccard(string a, string b)
    {
        HashSet<string> Shingles(string t)
        {
            var w = TextNormalizer.Words(t);
            int n = Math.Max(1, w.Length - _shingle + 1);
            return Enumerable.Range(0, n).Select(i => string.Join(' ', w, i, Math.Min(_shingle, w.Length - i))).ToHashSet();
        }
        var sa = Shingles(a);
        var sb = Shingles(b);
        int inter = sa.Count(sb.Contains);
        return (double)inter / (sa.Count + sb.Count - inter);
    }
}
