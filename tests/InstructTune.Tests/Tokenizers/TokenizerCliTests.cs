using System.Text.Json;
using InstructTune.Cli;
using static InstructTune.Tests.Tokenizers.ReferenceFixtures;

namespace InstructTune.Tests.Tokenizers;

/// <summary>itune tokenize / detokenize / train-tokenizer end to end on files, checked against the HF references.</summary>
[Collection("Console")]
public class TokenizerCliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "itune-cli-" + Guid.NewGuid().ToString("N"));

    public TokenizerCliTests() => Directory.CreateDirectory(_dir);
    public void Dispose() => Directory.Delete(_dir, true);

    private static int Run(params string[] args)
    {
        var (rc, _, err) = TestConsole.Run(args);
        LastError = err;
        return rc;
    }

    private static string LastError = "";

    [Fact]
    public void TokenizeAndDetokenizeMatchTheReferenceInInputOrder()
    {
        var tokPath = TestPaths.SharedTestData("tokenizers", "llama3");
        var input = Path.Combine(_dir, "in.jsonl");
        File.Copy(TestPaths.Fixtures("tokenizers", "corpus.jsonl"), input); // includes lone-surrogate escapes
        var ids = Path.Combine(_dir, "ids.jsonl");
        Assert.Equal(0, Run("tokenize", "--tokenizer", tokPath, "--add-special-tokens", "--decode", "--input", input, "--output", ids));
        var refs = Load("ref_llama3.jsonl");
        var lines = File.ReadAllLines(ids);
        Assert.Equal(refs.Length, lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            var r = JsonDocument.Parse(lines[i]).RootElement;
            Assert.Equal(refs[i].IdsSpecial, r.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
            Assert.Equal(refs[i].Decoded, r.GetProperty("decoded").GetString());
        }
        var text = Path.Combine(_dir, "text.jsonl");
        Assert.Equal(0, Run("detokenize", "--tokenizer", tokPath, "--skip-special-tokens", "--input", ids, "--output", text));
        var texts = File.ReadAllLines(text).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()).ToArray();
        Assert.Equal(refs.Select(r => r.DecodedSkip), texts);
    }

    [Fact]
    public void BadLineNamesFileAndLineAndWritesNoOutput()
    {
        var input = Path.Combine(_dir, "bad.jsonl");
        File.WriteAllLines(input, ["{\"text\": \"ok\"}", "{\"txt\": \"oops\"}"]);
        var output = Path.Combine(_dir, "out.jsonl");
        Assert.Equal(2, Run("tokenize", "--tokenizer", TestPaths.SharedTestData("tokenizers", "gpt2"), "--input", input, "--output", output));
        Assert.Contains($"{input}:2: expected an object with \"text\"", LastError);
        Assert.False(File.Exists(output));

        File.WriteAllLines(input, ["{\"ids\": [1, 99999999]}"]);
        Assert.Equal(2, Run("detokenize", "--tokenizer", TestPaths.SharedTestData("tokenizers", "gpt2"), "--input", input, "--output", output));
        Assert.Contains($"{input}:1: ids[1] = 99999999 is not a token id", LastError);
    }

    [Fact]
    public void TrainTokenizerWritesAFolderTokenizeCanUse()
    {
        var outDir = Path.Combine(_dir, "tok");
        Assert.Equal(0, Run("train-tokenizer", "--input", TestPaths.Fixtures("tokenizers", "train_corpus.txt"), "--vocab-size", "600", "--out", outDir));
        Assert.Equal(File.ReadAllText(TestPaths.Fixtures("tokenizers", "trained", "tokenizer.json")), File.ReadAllText(Path.Combine(outDir, "tokenizer.json")));
        Assert.Equal(2, Run("train-tokenizer", "--input", TestPaths.Fixtures("tokenizers", "train_corpus.txt"), "--vocab-size", "100", "--out", outDir));
        Assert.Contains("--vocab-size 100", LastError);
    }
}
