using InstructTune.Tokenizers;

namespace InstructTune.Tests.Tokenizers;

/// <summary>Malformed tokenizer files give errors that name the file and what is wrong.</summary>
public class BadInputTests
{
    private const string MinimalBpe = """
        {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}
        """;

    private static string Write(string json)
    {
        var path = Path.Combine(Path.GetTempPath(), $"itune-bad-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }

    private static string ErrorOf(string json)
    {
        var path = Write(json);
        try { return Assert.Throws<TokenizerFormatException>(() => TokenizerLoader.Load(path)).Message; }
        finally { File.Delete(path); }
    }

    [Fact]
    public void MinimalFileLoadsAndMerges()
    {
        var path = Write(MinimalBpe);
        try { Assert.Equal([2], TokenizerLoader.Load(path).Encode("ab").Ids); }
        finally { File.Delete(path); }
    }

    [Fact]
    public void MissingModel() => Assert.Contains("missing \"model\"", ErrorOf("""{"normalizer": null}"""));

    [Fact]
    public void NotJson() => Assert.Contains("not valid JSON", ErrorOf("{\"model\": "));

    [Theory]
    [InlineData("normalizer", """{"type": "Precompiled"}""", "normalizer.type: unsupported normalizer \"Precompiled\"")]
    [InlineData("pre_tokenizer", """{"type": "Sequence", "pretokenizers": [{"type": "UnicodeScripts"}]}""", "pre_tokenizer.pretokenizers[0].type: unsupported pre-tokenizer \"UnicodeScripts\"")]
    [InlineData("decoder", """{"type": "CTC"}""", "decoder.type: unsupported decoder \"CTC\"")]
    [InlineData("post_processor", """{"type": "Nope"}""", "post_processor.type: unsupported post-processor \"Nope\"")]
    public void UnknownComponentTypeIsNamedWithItsPath(string field, string value, string expected)
    {
        var json = MinimalBpe.Trim()[..^1] + $", \"{field}\": {value}}}";
        var msg = ErrorOf(json);
        Assert.Contains(expected, msg);
        Assert.Contains(".json", msg); // names the file
    }

    [Fact]
    public void UnknownModelType() =>
        Assert.Contains("model.type: unsupported model type \"WordLevelX\"", ErrorOf("""{"model": {"type": "WordLevelX", "vocab": {}}}"""));

    [Theory]
    [InlineData("""["a b c"]""", "model.merges[0]: \"a b c\" is not two tokens")]
    [InlineData("""["a x"]""", "model.merges[0] \"a x\": token \"x\" is not in the vocabulary")]
    [InlineData("""["a b", "b a"]""", "model.merges[1] \"b a\": merged token \"ba\" is not in the vocabulary")]
    [InlineData("""[["a"]]""", "model.merges[0]: expected \"a b\" or [\"a\", \"b\"]")]
    public void BrokenMergesAreNamed(string merges, string expected) =>
        Assert.Contains(expected, ErrorOf("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": """ + merges + "}}"));

    [Fact]
    public void NotASentencePieceModel()
    {
        var path = Path.Combine(Path.GetTempPath(), $"itune-bad-{Guid.NewGuid():N}.model");
        File.WriteAllBytes(path, [0xFF, 0xFF, 0xFF, 0x01]);
        try { Assert.Contains(path, Assert.ThrowsAny<Exception>(() => TokenizerLoader.Load(path)).Message); }
        finally { File.Delete(path); }
    }

    [Fact]
    public void LoneSurrogatesAreReadAsReplacementCharactersLikeTheReference()
    {
        // HF's bindings see a lone surrogate as U+FFFD; so do we, one unit for one unit (offsets unchanged).
        var tok = TokenizerLoader.Load(TestPaths.SharedTestData("tokenizers", "llama3"));
        Assert.Equal(tok.Encode("a\uFFFDb").Ids, tok.Encode("a\uD800b").Ids);
        Assert.Equal(tok.Encode("a\uFFFDb").Offsets, tok.Encode("a\uD800b").Offsets);
    }
}
