using System.Text.Json;

namespace InstructTune.Evaluation.IFEval.LangDetect;

/// <summary>
/// langdetect's language profiles (one JSON file per language: <c>freq</c> of 1–3-grams, <c>n_words</c> per
/// gram length, <c>name</c>) turned into the detector's table: for each n-gram, P(gram | language) =
/// freq / n_words[len-1] for every language, 0 where a profile lacks it.
/// </summary>
public sealed class LangDetectProfiles
{
    /// <summary>Language codes, in the index order of the probability vectors (file names, ordinal order).</summary>
    public IReadOnlyList<string> Languages { get; }

    /// <summary>n-gram → per-language probability.</summary>
    internal IReadOnlyDictionary<string, double[]> WordLangProb { get; }

    private LangDetectProfiles(List<string> languages, Dictionary<string, double[]> map)
    {
        Languages = languages;
        WordLangProb = map;
    }

    /// <summary>Loads every non-hidden file of <paramref name="dir"/> as a profile; bad files are named in the error.</summary>
    public static LangDetectProfiles Load(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"langdetect profile folder not found: {dir}");
        // langdetect iterates os.listdir (file-system order); the order only permutes the vector, so take a stable one.
        var files = Directory.GetFiles(dir)
            .Where(f => !Path.GetFileName(f).StartsWith('.') && !Path.GetFileName(f).EndsWith(".md", StringComparison.OrdinalIgnoreCase))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal).ToList();
        if (files.Count < 2) throw new InvalidDataException($"{dir}: need at least 2 language profiles, found {files.Count}");
        var languages = new List<string>();
        var map = new Dictionary<string, double[]>(StringComparer.Ordinal);
        for (int index = 0; index < files.Count; index++)
        {
            var (name, freq, nWords) = ReadProfile(files[index]);
            if (languages.Contains(name)) throw new InvalidDataException($"{files[index]}: duplicate language '{name}'");
            languages.Add(name);
            foreach (var (word, count) in freq)
            {
                if (!map.TryGetValue(word, out var probs)) map[word] = probs = new double[files.Count];
                int len = word.EnumerateRunes().Count();
                if (len is >= 1 and <= 3) probs[index] = 1.0 * count / nWords[len - 1];
            }
        }
        return new LangDetectProfiles(languages, map);
    }

    private static (string Name, List<(string, long)> Freq, long[] NWords) ReadProfile(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = doc.RootElement;
            var name = root.GetProperty("name").GetString() ?? throw new InvalidDataException("name is null");
            var nWords = root.GetProperty("n_words").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            if (nWords.Length < 3) throw new InvalidDataException("n_words needs 3 entries");
            var freq = root.GetProperty("freq").EnumerateObject().Select(p => (p.Name, p.Value.GetInt64())).ToList();
            return (name, freq, nWords);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or InvalidDataException or FormatException)
        {
            throw new InvalidDataException($"{path}: not a langdetect profile ({e.Message})", e);
        }
    }
}
