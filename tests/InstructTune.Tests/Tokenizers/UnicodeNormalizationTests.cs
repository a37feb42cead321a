using System.Text;
using System.Text.Json;
using InstructTune.Tokenizers;

namespace InstructTune.Tests.Tokenizers;

/// <summary>Our NFC/NFD/NFKC/NFKD against Python's unicodedata (tests/fixtures/tokenizers/normalization.jsonl),
/// including Hangul, mark reordering, blocked compositions and composition exclusions.</summary>
public class UnicodeNormalizationTests
{
    [Fact]
    public void MatchesPythonUnicodedata()
    {
        var failures = new List<string>();
        foreach (var line in File.ReadLines(TestPaths.Fixtures("tokenizers", "normalization.jsonl")))
        {
            var r = JsonDocument.Parse(line).RootElement;
            var text = r.GetProperty("text").GetString()!;
            foreach (var (name, form) in new[] { ("NFC", NormalizationForm.FormC), ("NFD", NormalizationForm.FormD),
                                                ("NFKC", NormalizationForm.FormKC), ("NFKD", NormalizationForm.FormKD) })
            {
                var expected = r.GetProperty(name).GetString()!;
                var norm = new UnicodeNormalizer(form).Normalize(NormalizedText.Identity(text, 0, text.Length));
                if (norm.Text != expected) failures.Add($"{name} {JsonSerializer.Serialize(text)} -> {JsonSerializer.Serialize(norm.Text)} expected {JsonSerializer.Serialize(expected)}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(10)));
    }

    [Fact]
    public void ComposedCharacterTakesTheSpanOfItsFirstSourceCharacterAsHfDoes()
    {
        var n = new UnicodeNormalizer(NormalizationForm.FormC).Normalize(NormalizedText.Identity("xe\u0301y", 0, 4));
        Assert.Equal("x\u00e9y", n.Text);
        Assert.Equal((1, 2), n.OriginalSpan(1, 2)); // HF: "é" from "e\u0301" maps to the "e"
        Assert.Equal((3, 4), n.OriginalSpan(2, 3));
    }
}
