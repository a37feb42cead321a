using InstructTune.Tokenizers;

namespace InstructTune.Tests.Tokenizers;

/// <summary>
/// The hand-written GPT-2 / Llama 3 / Qwen2 splitters against hand-worked Oniguruma results (the behaviour the HF
/// references show on the corpus), and against .NET Regex on BMP text where the two engines agree by construction.
/// </summary>
public class SplitPatternTests
{
    private static string[] Split(MatchFinder f, string s)
    {
        var m = new List<(int, int)>();
        f(s, m);
        return m.Select(x => s[x.Item1..x.Item2]).ToArray();
    }

    private static readonly MatchFinder Llama3 = SplitPatterns.ForRegex(SplitPatterns.Llama3);
    private static readonly MatchFinder Gpt2 = SplitPatterns.ForRegex(SplitPatterns.Gpt2);
    private static readonly MatchFinder Qwen2 = SplitPatterns.ForRegex(SplitPatterns.Qwen2);

    [Fact]
    public void Llama3HandWorked()
    {
        Assert.Equal(["Hello", ",", " world", "!"], Split(Llama3, "Hello, world!"));
        Assert.Equal(["I", "'M", " SURE", " YOU", "'RE"], Split(Llama3, "I'M SURE YOU'RE"));       // (?i:…) contractions
        Assert.Equal(["123", "456", "7"], Split(Llama3, "1234567"));                              // \p{N}{1,3}
        Assert.Equal(["a", "  ", " b"], Split(Llama3, "a   b"));                                  // \s+(?!\S) gives one back
        Assert.Equal(["a", " \n\n", "b"], Split(Llama3, "a \n\nb"));                              // \s*[\r\n]+
        Assert.Equal(["(word", ")"], Split(Llama3, "(word)"));                                    // [^\r\n\p{L}\p{N}]?\p{L}+
        Assert.Equal(["\U0001F600abc"], Split(Llama3, "\U0001F600abc"));                          // one code point, not a surrogate
        Assert.Equal([" \U0001D400\U0001D401"], Split(Llama3, " \U0001D400\U0001D401"));          // supplementary letters are \p{L}
        Assert.Equal(["x", " ...\n"], Split(Llama3, "x ...\n"));                                  // ?[^\s\p{L}\p{N}]+[\r\n]*
        Assert.Equal(["'\u017F"], Split(Llama3, "'\u017F"));                                      // ſ folds to s
    }

    [Fact]
    public void Gpt2AndQwen2HandWorked()
    {
        Assert.Equal(["I", "'", "M"], Split(Gpt2, "I'M"));                                        // case-sensitive
        Assert.Equal(["1234567"], Split(Gpt2, "1234567"));
        Assert.Equal([" 12", " ab"], Split(Gpt2, " 12 ab"));
        Assert.Equal(["1", "2", "3"], Split(Qwen2, "123"));                                       // \p{N} one by one
    }

    [Fact]
    public void AgreeWithDotNetRegexOnBmpText()
    {
        var corpus = ReferenceFixtures.Corpus().Where(s => !s.Any(char.IsSurrogate) && !s.Contains('\u017F')).ToArray();
        foreach (var (pattern, hand) in new[] { (SplitPatterns.Gpt2, Gpt2), (SplitPatterns.Llama3, Llama3), (SplitPatterns.Qwen2, Qwen2) })
        {
            var re = new System.Text.RegularExpressions.Regex(pattern);
            foreach (var s in corpus)
                Assert.Equal(re.Matches(s).Select(m => m.Value).ToArray(), Split(hand, s));
        }
    }
}
