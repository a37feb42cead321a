namespace InstructTune.Evaluation.Metrics;

/// <summary>
/// The Porter (1980) suffix stripper in the variant NLTK calls NLTK_EXTENSIONS, its default mode, which is the
/// one rouge_score uses (<c>porter.PorterStemmer()</c> with no mode). The extensions over the paper: a small pool
/// of irregular forms, words of ≤ 2 letters untouched, "ies"/"ied" on 4-letter words → "ie", y→i only after a
/// consonant that is not the first letter, *o also true for a 2-letter vowel-consonant stem, and the extra step-2
/// rules (bli→ble, alli recursion, fulli→ful, logi→log). Re-implemented from the published algorithm and NLTK's
/// documented deviations; checked token by token against NLTK in the tests.
/// </summary>
public static class PorterStemmer
{
    private static readonly Dictionary<string, string> Pool = new(StringComparer.Ordinal)
    {
        ["sky"] = "sky", ["skies"] = "sky", ["dying"] = "die", ["lying"] = "lie", ["tying"] = "tie",
        ["news"] = "news", ["innings"] = "inning", ["inning"] = "inning", ["outings"] = "outing",
        ["outing"] = "outing", ["cannings"] = "canning", ["canning"] = "canning", ["howe"] = "howe",
        ["proceed"] = "proceed", ["exceed"] = "exceed", ["succeed"] = "succeed",
    };

    /// <summary>Stems one lowercase word (the input is lowercased first, as NLTK does by default).</summary>
    public static string Stem(string word)
    {
        var w = PythonText.Lower(word);
        if (Pool.TryGetValue(word, out var irregular)) return irregular;
        if (word.Length <= 2) return w;
        w = Step1a(w);
        w = Step1b(w);
        w = Step1c(w);
        w = Step2(w);
        w = Step3(w);
        w = Step4(w);
        w = Step5a(w);
        return Step5b(w);
    }

    // A consonant is a letter other than a, e, i, o, u, and other than y preceded by a consonant.
    private static bool IsConsonant(string w, int i)
    {
        switch (w[i])
        {
            case 'a' or 'e' or 'i' or 'o' or 'u': return false;
            case 'y': return i == 0 || !IsConsonant(w, i - 1);
            default: return true;
        }
    }

    // m in [C](VC){m}[V]: the number of vowel→consonant transitions.
    private static int Measure(string stem)
    {
        int m = 0;
        for (int i = 1; i < stem.Length; i++)
            if (!IsConsonant(stem, i - 1) && IsConsonant(stem, i)) m++;
        return m;
    }

    private static bool ContainsVowel(string stem)
    {
        for (int i = 0; i < stem.Length; i++)
            if (!IsConsonant(stem, i)) return true;
        return false;
    }

    private static bool EndsDoubleConsonant(string w) =>
        w.Length >= 2 && w[^1] == w[^2] && IsConsonant(w, w.Length - 1);

    // *o: ends consonant-vowel-consonant with the last not w/x/y; NLTK also accepts a 2-letter vowel-consonant word.
    private static bool EndsCvc(string w) =>
        (w.Length >= 3 && IsConsonant(w, w.Length - 3) && !IsConsonant(w, w.Length - 2)
         && IsConsonant(w, w.Length - 1) && w[^1] is not ('w' or 'x' or 'y'))
        || (w.Length == 2 && !IsConsonant(w, 0) && IsConsonant(w, 1));

    private readonly record struct Rule(string Suffix, string Replacement, Func<string, bool>? Condition);

    private const string DoubleConsonant = "*d";

    // The first rule whose suffix matches decides: it applies if its condition holds, otherwise the word is kept.
    private static string ApplyRules(string word, IEnumerable<Rule> rules)
    {
        foreach (var rule in rules)
        {
            if (rule.Suffix == DoubleConsonant && EndsDoubleConsonant(word))
            {
                var s = word[..^2];
                return rule.Condition == null || rule.Condition(s) ? s + rule.Replacement : word;
            }
            if (word.EndsWith(rule.Suffix, StringComparison.Ordinal))
            {
                var s = word[..^rule.Suffix.Length];
                return rule.Condition == null || rule.Condition(s) ? s + rule.Replacement : word;
            }
        }
        return word;
    }

    private static bool PositiveMeasure(string s) => Measure(s) > 0;
    private static bool MeasureAbove1(string s) => Measure(s) > 1;

    private static string Step1a(string w)
    {
        if (w.EndsWith("ies", StringComparison.Ordinal) && w.Length == 4) return w[..^3] + "ie";
        return ApplyRules(w, [new("sses", "ss", null), new("ies", "i", null), new("ss", "ss", null), new("s", "", null)]);
    }

    private static string Step1b(string w)
    {
        if (w.EndsWith("ied", StringComparison.Ordinal)) return w[..^3] + (w.Length == 4 ? "ie" : "i");
        if (w.EndsWith("eed", StringComparison.Ordinal))
        {
            var s = w[..^3];
            return Measure(s) > 0 ? s + "ee" : w;
        }
        string? stem = null;
        foreach (var suffix in (string[])["ed", "ing"])
            if (w.EndsWith(suffix, StringComparison.Ordinal) && ContainsVowel(w[..^suffix.Length]))
            {
                stem = w[..^suffix.Length];
                break;
            }
        if (stem == null) return w;
        char last = stem.Length > 0 ? stem[^1] : '\0';
        return ApplyRules(stem,
        [
            new("at", "ate", null), new("bl", "ble", null), new("iz", "ize", null),
            new(DoubleConsonant, last.ToString(), _ => last is not ('l' or 's' or 'z')),
            new("", "e", s => Measure(s) == 1 && EndsCvc(s)),
        ]);
    }

    // NLTK: y → i only when preceded by a consonant that is not the whole stem ('happy' → 'happi', 'enjoy' kept).
    private static string Step1c(string w) =>
        ApplyRules(w, [new("y", "i", s => s.Length > 1 && IsConsonant(s, s.Length - 1))]);

    private static string Step2(string w)
    {
        if (w.EndsWith("alli", StringComparison.Ordinal) && PositiveMeasure(w[..^4]))
            return Step2(w[..^4] + "al");
        return ApplyRules(w,
        [
            new("ational", "ate", PositiveMeasure), new("tional", "tion", PositiveMeasure),
            new("enci", "ence", PositiveMeasure), new("anci", "ance", PositiveMeasure),
            new("izer", "ize", PositiveMeasure), new("bli", "ble", PositiveMeasure),
            new("alli", "al", PositiveMeasure), new("entli", "ent", PositiveMeasure),
            new("eli", "e", PositiveMeasure), new("ousli", "ous", PositiveMeasure),
            new("ization", "ize", PositiveMeasure), new("ation", "ate", PositiveMeasure),
            new("ator", "ate", PositiveMeasure), new("alism", "al", PositiveMeasure),
            new("iveness", "ive", PositiveMeasure), new("fulness", "ful", PositiveMeasure),
            new("ousness", "ous", PositiveMeasure), new("aliti", "al", PositiveMeasure),
            new("iviti", "ive", PositiveMeasure), new("biliti", "ble", PositiveMeasure),
            new("fulli", "ful", PositiveMeasure),
            // NLTK measures the word minus "ogi" (stem + "l"), not the stem minus "logi".
            new("logi", "log", _ => PositiveMeasure(w[..^3])),
        ]);
    }

    private static string Step3(string w) => ApplyRules(w,
    [
        new("icate", "ic", PositiveMeasure), new("ative", "", PositiveMeasure), new("alize", "al", PositiveMeasure),
        new("iciti", "ic", PositiveMeasure), new("ical", "ic", PositiveMeasure), new("ful", "", PositiveMeasure),
        new("ness", "", PositiveMeasure),
    ]);

    private static string Step4(string w) => ApplyRules(w,
    [
        new("al", "", MeasureAbove1), new("ance", "", MeasureAbove1), new("ence", "", MeasureAbove1),
        new("er", "", MeasureAbove1), new("ic", "", MeasureAbove1), new("able", "", MeasureAbove1),
        new("ible", "", MeasureAbove1), new("ant", "", MeasureAbove1), new("ement", "", MeasureAbove1),
        new("ment", "", MeasureAbove1), new("ent", "", MeasureAbove1),
        new("ion", "", s => Measure(s) > 1 && s.Length > 0 && s[^1] is 's' or 't'),
        new("ou", "", MeasureAbove1), new("ism", "", MeasureAbove1), new("ate", "", MeasureAbove1),
        new("iti", "", MeasureAbove1), new("ous", "", MeasureAbove1), new("ive", "", MeasureAbove1),
        new("ize", "", MeasureAbove1),
    ]);

    private static string Step5a(string w)
    {
        if (!w.EndsWith('e')) return w;
        var s = w[..^1];
        int m = Measure(s);
        return m > 1 || (m == 1 && !EndsCvc(s)) ? s : w;
    }

    // (m > 1 and *d and *L) → single letter; NLTK measures the word minus one letter.
    private static string Step5b(string w) =>
        ApplyRules(w, [new("ll", "l", _ => Measure(w[..^1]) > 1)]);
}
