using InstructTune.Tokenizers;
using static InstructTune.Tests.Tokenizers.ReferenceFixtures;

namespace InstructTune.Tests.Tokenizers;

/// <summary>Every tokenizer.json in ../shared/testdata/tokenizers against Hugging Face tokenizers 0.23 (node) on the
/// 360-string corpus: ids with and without special tokens, offsets, decode with and without skipping.</summary>
public class TokenizerJsonReferenceTests
{
    public static TheoryData<string> Names => new() { "gpt2", "llama2", "llama3", "phi3-mini", "qwen2.5" };

    /// <summary>Hand-built tokenizers (tools/golden/tokenizers_synthetic.py) for WordPiece, Unigram, Metaspace,
    /// suffix BPE, added-token flags, Split behaviours and ByteLevel add_prefix_space / trim_offsets.</summary>
    public static TheoryData<string> Synthetic => new() { "wordpiece", "wordpiece_ws", "unigram", "bpe_suffix", "bytelevel_prefix" };

    [Theory]
    [MemberData(nameof(Names))]
    public void MatchesHuggingFaceTokenizers(string name) =>
        Check(TestPaths.SharedTestData("tokenizers", name), $"ref_{name}.jsonl");

    [Theory]
    [MemberData(nameof(Synthetic))]
    public void SyntheticTokenizersMatchHuggingFace(string name) =>
        Check(TestPaths.Fixtures("tokenizers", "synthetic", name + ".json"), $"ref_synthetic_{name}.jsonl");

    private static void Check(string path, string refFile)
    {
        var tok = TokenizerLoader.Load(path);
        var corpus = Corpus();
        var refs = Load(refFile);
        Assert.Equal(corpus.Length, refs.Length);
        var failures = new List<string>();
        for (int i = 0; i < corpus.Length; i++)
        {
            var text = corpus[i];
            var r = refs[i];
            var plain = tok.Encode(text);
            var special = tok.Encode(text, addSpecialTokens: true);
            if (!plain.Ids.SequenceEqual(r.Ids))
                failures.Add($"#{i} {Show(text)} ids {Show(plain.Ids)} expected {Show(r.Ids)}");
            else if (!plain.Offsets.Select(o => new[] { o.Start, o.End }).SelectMany(x => x).SequenceEqual(r.Offsets!.SelectMany(x => x)))
                failures.Add($"#{i} {Show(text)} offsets {string.Join(" ", plain.Offsets)} expected {string.Join(" ", r.Offsets!.Select(o => $"({o[0]}, {o[1]})"))}");
            if (!special.Ids.SequenceEqual(r.IdsSpecial))
                failures.Add($"#{i} {Show(text)} ids+special {Show(special.Ids)} expected {Show(r.IdsSpecial)}");
            var dec = tok.Decode(r.IdsSpecial);
            if (dec != r.Decoded) failures.Add($"#{i} decode {Show(dec)} expected {Show(r.Decoded)}");
            var decSkip = tok.Decode(r.IdsSpecial, skipSpecialTokens: true);
            if (decSkip != r.DecodedSkip) failures.Add($"#{i} decode(skip) {Show(decSkip)} expected {Show(r.DecodedSkip)}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches:\n" + string.Join("\n", failures.Take(15)));
    }
}
