using System.Text.Json;
using InstructTune.Evaluation.IFEval;
using InstructTune.Evaluation.IFEval.LangDetect;
using InstructTune.Evaluation.IFEval.Text;

namespace InstructTune.Tests.Evaluation.IFEval;

/// <summary>Punkt, nltk word_tokenize, CPython's random, langdetect and json against goldens from the genuine libraries
/// (tools/golden/ifeval_text_goldens.py).</summary>
public class IFEvalTextToolsTests
{
    private static IEnumerable<JsonElement> Lines(string file) =>
        File.ReadLines(TestPaths.Fixtures("ifeval", file)).Select(l => JsonDocument.Parse(l).RootElement);

    private static List<string> Strings(JsonElement a) => a.EnumerateArray().Select(e => e.GetString()!).ToList();

    [Theory]
    [InlineData("punkt_cases.jsonl", 50)] // hand-picked tricky texts
    [InlineData("punkt_fuzz.jsonl", 600)] // seeded random concatenations of tricky pieces
    public void Punkt_And_WordTokenize_MatchNltk(string file, int atLeast)
    {
        var s = IFEvalSharedData.Services;
        int n = 0;
        foreach (var c in Lines(file))
        {
            var text = c.GetProperty("text").GetString()!;
            Assert.Equal(Strings(c.GetProperty("sentences")), s.Sentences.Tokenize(text));
            Assert.Equal(Strings(c.GetProperty("words")), s.Words.WordTokenize(text));
            n++;
        }
        Assert.True(n >= atLeast);
    }

    [Fact]
    public void Punkt_HandWorked()
    {
        var s = IFEvalSharedData.Services.Sentences;
        // "Mr." is a known abbreviation, "Smith" is not a sentence start: one break only, after "Washington.".
        Assert.Equal(["Mr. Smith went to Washington.", "He left."], s.Tokenize("Mr. Smith went to Washington. He left."));
        // Realignment keeps the closing parenthesis with the first sentence.
        Assert.Equal(["(Sent1.)", "Sent2."], s.Tokenize("(Sent1.) Sent2."));
        Assert.Empty(s.Tokenize("   "));
    }

    [Fact]
    public void PythonRandom_MatchesCPythonStreams()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixtures("ifeval", "python_random.json")));
        foreach (var seedProp in doc.RootElement.EnumerateObject())
        {
            ulong seed = ulong.Parse(seedProp.Name);
            var g = seedProp.Value;
            var r = new PythonRandom(seed);
            Assert.Equal(g.GetProperty("getrandbits32").EnumerateArray().Select(e => e.GetUInt32()), Enumerable.Range(0, 5).Select(_ => r.NextUInt32()));
            r = new PythonRandom(seed);
            Assert.Equal(g.GetProperty("random").EnumerateArray().Select(e => e.GetDouble()), Enumerable.Range(0, 5).Select(_ => r.NextDouble()));
            r = new PythonRandom(seed);
            Assert.Equal(g.GetProperty("gauss").EnumerateArray().Select(e => e.GetDouble()), Enumerable.Range(0, 5).Select(_ => r.Gauss(0.0, 1.0)));
            r = new PythonRandom(seed);
            var ns = g.GetProperty("randbelow_n").EnumerateArray().Select(e => e.GetInt32()).ToList();
            Assert.Equal(g.GetProperty("randbelow").EnumerateArray().Select(e => e.GetInt32()), ns.Select(r.RandBelow));
        }
        // Known value: random.seed(0); random.random() == 0.8444218515250481.
        Assert.Equal(0.8444218515250481, new PythonRandom(0).NextDouble());
    }

    [Fact]
    public void LangDetect_MatchesPythonLangdetect_Seed0()
    {
        var d = IFEvalSharedData.Services.Language;
        foreach (var c in Lines("langdetect_cases.jsonl"))
        {
            var text = c.GetProperty("text").GetString()!;
            var expected = c.GetProperty("langs");
            if (expected.ValueKind == JsonValueKind.Null)
            {
                Assert.Throws<LangDetectException>(() => d.Probabilities(text));
                continue;
            }
            var got = d.Probabilities(text);
            var want = expected.EnumerateArray().Select(e => (e[0].GetString()!, e[1].GetDouble())).ToList();
            Assert.Equal(want.Select(w => w.Item1), got.Select(g => g.Lang));
            for (int i = 0; i < want.Count; i++) Assert.Equal(want[i].Item2, got[i].Prob, 12);
        }
    }

    [Fact]
    public void LangDetect_KnownLanguages_AndSeeding()
    {
        var profiles = LangDetectProfiles.Load(TestPaths.SharedTestData("langdetect-profiles"));
        Assert.Equal(55, profiles.Languages.Count);
        var seeded = new LangDetector(profiles, seed: 0);
        Assert.Equal("en", seeded.Detect("The quick brown fox jumps over the lazy dog near the river bank."));
        Assert.Equal("de", seeded.Detect("Der schnelle braune Fuchs springt über den faulen Hund am Flussufer."));
        Assert.Equal("ja", seeded.Detect("素早い茶色の狐が怠け者の犬を飛び越えます。"));
        Assert.Equal("ko", seeded.Detect("빠른 갈색 여우가 게으른 개를 뛰어넘습니다."));
        // Unseeded detection (the official checker's behaviour) still agrees on clear text; its probabilities vary.
        var unseeded = new LangDetector(profiles, seed: null);
        Assert.Equal("fr", unseeded.Detect("Le renard brun rapide saute par-dessus le chien paresseux."));
        // Same seed, same answer and probability, every time.
        var text = "Mixed text: hello world bonjour le monde hallo Welt.";
        Assert.Equal(seeded.Probabilities(text), seeded.Probabilities(text));
        Assert.Throws<LangDetectException>(() => seeded.Detect("1234 !!!"));
    }

    [Fact]
    public void PyJson_And_Dumps_MatchPython()
    {
        foreach (var c in Lines("pyjson_cases.jsonl"))
        {
            var text = c.GetProperty("text").GetString()!;
            Assert.True(c.GetProperty("loads_ok").GetBoolean() == PyJson.IsValid(text), $"json.loads({JsonSerializer.Serialize(text)})");
            Assert.Equal(c.GetProperty("dumps").GetString(), IFEvalWriter.PyDumpsString(text));
        }
    }

    [Fact]
    public void PyUnicode_PythonSemantics()
    {
        // Python's \w excludes combining marks (Mc, Mn), so re.findall(r"\w+", "हिन्दी") == ['ह', 'न', 'द'];
        // it includes No digits: "a\u0301b ²³ ½" gives ['a', 'b', '²³', '½'].
        Assert.Equal(3, PyUnicode.CountWordRuns("हिन्दी"));
        Assert.Equal(4, PyUnicode.CountWordRuns("a\u0301b ²³ ½"));
        Assert.Equal(4, PyUnicode.CountWordRuns("it's a-ok")); // it, s, a, ok
        Assert.Equal(0, PyUnicode.CountWordRuns(" ... "));
        Assert.True(PyUnicode.IsUpper("HELLO, WORLD 123"));
        Assert.False(PyUnicode.IsUpper("123 !!"));
        Assert.False(PyUnicode.IsUpper("HELLo"));
        Assert.True(PyUnicode.IsLower("hello ß 123"));
        Assert.False(PyUnicode.IsLower("ǅ title"));
        Assert.Equal("a b", PyUnicode.Strip("\x1c\u00a0a b\u2003\n"));
        Assert.Equal(["a", "b"], PyUnicode.SplitWhitespace(" a\u001fb "));
    }
}
