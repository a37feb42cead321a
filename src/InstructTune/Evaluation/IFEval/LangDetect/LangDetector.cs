using System.Text;
using System.Text.RegularExpressions;
using InstructTune.Evaluation.IFEval.Text;

namespace InstructTune.Evaluation.IFEval.LangDetect;

/// <summary>langdetect found no usable n-gram in the text (<c>LangDetectException: No features in text.</c>).</summary>
public sealed class LangDetectException(string message) : InstructTune.Common.InputException(message);

/// <summary>
/// The Cybozu/Shuyo language detector as the Python <c>langdetect</c> 1.0.9 port runs it: clean the text
/// (URLs, e-mails, Vietnamese tone marks, repeated spaces, Latin letters when the text is mostly non-Latin),
/// extract the 1–3-grams known to the profiles (skipping all-capital words), then 7 trials of a naive-Bayes
/// random walk: each trial draws n-grams uniformly, multiplies the language probabilities by
/// P(gram | lang) + alpha/10000 with alpha = 0.5 + N(0,1)·0.05, renormalises every 5 draws and stops at a
/// 0.99999 maximum or after 1000 draws. The trials are averaged; the top language above 0.1 wins.
/// </summary>
/// <remarks>
/// The walk is random. With a seed the generator is CPython's Mersenne Twister (<see cref="PythonRandom"/>),
/// so <c>Detect</c> equals Python's <c>langdetect.detect</c> under <c>DetectorFactory.seed = seed</c>; with a null
/// seed each call draws a fresh seed, as the official IFEval checker does (it never seeds).
/// </remarks>
public sealed class LangDetector
{
    private const double AlphaDefault = 0.5, AlphaWidth = 0.05, ProbThreshold = 0.1, ConvThreshold = 0.99999;
    private const int IterationLimit = 1000, BaseFreq = 10000, NTrial = 7, MaxTextLength = 10000;

    private static readonly Regex UrlRe = new(@"https?://[-_.?&~;+=/#0-9A-Za-z]{1,2076}", RegexOptions.Compiled);
    private static readonly Regex MailRe = new(@"[-_.0-9A-Za-z]{1,64}@[-_0-9A-Za-z]{1,255}[-_.0-9A-Za-z]{1,255}", RegexOptions.Compiled);

    private readonly LangDetectProfiles _profiles;
    private readonly ulong? _seed;

    public LangDetector(LangDetectProfiles profiles, ulong? seed = 0)
    {
        _profiles = profiles;
        _seed = seed;
    }

    public ulong? Seed => _seed;

    /// <summary>The most probable language code, or "unknown" when none passes 0.1.</summary>
    /// <exception cref="LangDetectException">The text has no n-gram the profiles know.</exception>
    public string Detect(string text)
    {
        var probs = Probabilities(text);
        return probs.Count > 0 ? probs[0].Lang : "unknown";
    }

    /// <summary>Languages with probability above 0.1, most probable first (langdetect's <c>detect_langs</c>).</summary>
    public List<(string Lang, double Prob)> Probabilities(string text)
    {
        var cps = Clean(Append(text));
        var ngrams = ExtractNgrams(cps);
        if (ngrams.Count == 0) throw new LangDetectException("No features in text.");

        int L = _profiles.Languages.Count;
        var langProb = new double[L];
        var rng = new PythonRandom(_seed ?? (ulong)Random.Shared.NextInt64(long.MaxValue));
        var prob = new double[L];
        for (int t = 0; t < NTrial; t++)
        {
            Array.Fill(prob, 1.0 / L);
            double alpha = AlphaDefault + rng.Gauss(0.0, 1.0) * AlphaWidth;
            double weight = alpha / BaseFreq;
            for (int i = 0; ; i++)
            {
                var word = ngrams[rng.RandBelow(ngrams.Count)];
                for (int j = 0; j < L; j++) prob[j] *= weight + word[j];
                if (i % 5 == 0 && (NormalizeProb(prob) > ConvThreshold || i >= IterationLimit)) break;
            }
            for (int j = 0; j < L; j++) langProb[j] += prob[j] / NTrial;
        }

        var result = new List<(string, double)>();
        for (int j = 0; j < L; j++)
            if (langProb[j] > ProbThreshold) result.Add((_profiles.Languages[j], langProb[j]));
        // Python's list.sort(reverse=True) is stable: equal probabilities keep profile order.
        return result.Select((x, k) => (x, k)).OrderByDescending(p => p.x.Item2).ThenBy(p => p.k).Select(p => p.x).ToList();
    }

    /// <summary>Divides by the (left-to-right) sum and returns the largest normalised value.</summary>
    private static double NormalizeProb(double[] prob)
    {
        double maxp = 0.0, sump = 0.0;
        foreach (var p in prob) sump += p;
        for (int i = 0; i < prob.Length; i++)
        {
            double p = prob[i] / sump;
            if (maxp < p) maxp = p;
            prob[i] = p;
        }
        return maxp;
    }

    /// <summary>Detector.append: strip URLs and e-mails, fold Vietnamese marks, cut to 10000 code points, squeeze spaces.</summary>
    private static List<int> Append(string text)
    {
        text = UrlRe.Replace(text, " ");
        text = MailRe.Replace(text, " ");
        text = LangDetectNormalizer.NormalizeVi(text);
        var cps = new List<int>();
        int pre = 0, n = 0;
        foreach (var r in text.EnumerateRunes())
        {
            if (n++ >= MaxTextLength) break;
            int ch = r.Value;
            if (ch != ' ' || pre != ' ') cps.Add(ch);
            pre = ch;
        }
        return cps;
    }

    /// <summary>Detector.cleaning_text: drop 'A'..'z' when non-Latin code points (≥ U+0300) outnumber them twice.</summary>
    private static List<int> Clean(List<int> cps)
    {
        int latin = 0, nonLatin = 0;
        foreach (var ch in cps)
        {
            if (ch is >= 'A' and <= 'z') latin++;
            // langdetect compares a block id with a block name here, so the Latin-Extended-Additional exemption never applies.
            else if (ch >= 0x300) nonLatin++;
        }
        if (latin * 2 >= nonLatin) return cps;
        return cps.Where(ch => ch < 'A' || ch > 'z').ToList();
    }

    /// <summary>Detector._extract_ngrams with NGram.add_char: the 1..3-grams ending at each character.</summary>
    private List<double[]> ExtractNgrams(List<int> cps)
    {
        var result = new List<double[]>();
        var grams = new List<int>(4) { ' ' };
        bool capitalWord = false;
        var sb = new StringBuilder();
        foreach (var raw in cps)
        {
            int ch = LangDetectNormalizer.Normalize(raw);
            int last = grams[^1];
            if (last == ' ')
            {
                grams.Clear();
                grams.Add(' ');
                capitalWord = false;
                if (ch == ' ') continue;
            }
            else if (grams.Count >= 3) grams.RemoveAt(0);
            grams.Add(ch);

            if (IsUpper(ch)) { if (IsUpper(last)) capitalWord = true; }
            else capitalWord = false;

            if (capitalWord) continue;
            for (int n = 1; n <= 3 && n <= grams.Count; n++)
            {
                if (n == 1 && grams[^1] == ' ') continue;
                sb.Clear();
                for (int k = grams.Count - n; k < grams.Count; k++) sb.Append(LangDetectNormalizer.ToStr(grams[k]));
                if (_profiles.WordLangProb.TryGetValue(sb.ToString(), out var probs)) result.Add(probs);
            }
        }
        return result;
    }

    private static bool IsUpper(int cp) => Rune.IsValid(cp) && PyUnicode.IsUpperCp(new Rune(cp));
}
